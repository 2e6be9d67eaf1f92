"""The ablation's report section: next-token tables, shifts with CIs and paired tests, judged
continuations and drift, side effects on control prompts."""

from __future__ import annotations

from pathlib import Path

from harness.analysis.stats import signflip_method
from harness.studies.contract import RunStore
from harness.studies.controls import parse_control
from harness.studies.items import split_condition
from harness.views.report.effects import (
    Conds,
    conditions_of,
    effects_table,
    examples_table,
    feature_section,
    judged_by,
    next_token_table,
    p_text,
    specificity_table,
)
from harness.views.report.markdown_table import cell, fmt_row, table

__all__ = ["ablation_section"]


def ablation_section(
    store: RunStore, sae: str, study: str, conds: Conds, plot_dir: Path | None
) -> list[str]:
    """Next-token tables (target and control prompts), shifts with CIs and paired tests, judged
    continuations and drift, side effects on control prompts."""
    features = {(f["sae"], f["study"]): f for f in store.records("feature")}
    records = [
        r
        for r in store.records("next_token")
        if r["sae"] == sae and r["study"] == study and parse_control(r["condition"]) is None
    ]
    generations = [
        g
        for g in store.records("generation")
        if g["sae"] == sae and g["study"] == study and parse_control(g["condition"]) is None
    ]
    judgements = {j["of"]: j for j in store.judgements()}
    lines = [f"## {cell(study)} on {cell(sae)}", ""]
    if generations:
        lines += [judged_by(store), ""]
    if (sae, study) in features:
        lines += feature_section(features[(sae, study)])
    words = list(records[0]["logit_shift"]) if records else []
    has_metric = bool(records) and "metric_base" in records[0]
    lines += [
        "### Next-token table",
        "",
        "Per prompt: the most likely next token without and with the intervention (and its "
        "probability), whether it changed, the shift in the baseline top token's probability, "
        "and KL(baseline ‖ intervened) of the next-token distribution.",
        "",
        *next_token_table(records),
        "",
    ]
    summary = []
    for cond in conds:
        pset, c = split_condition(cond)
        metrics = conds[cond]
        if "top1_changed" not in metrics:
            continue
        summary.append(
            [
                cell(pset),
                cell(c),
                fmt_row(metrics.get("top1_changed")),
                fmt_row(metrics.get("p_shift")),
                fmt_row(metrics.get("kl_mean")),
                *(fmt_row(metrics.get(f"logit_shift[{w}]")) for w in words),
                *(
                    [fmt_row(metrics.get("metric_shift")), p_text(metrics.get("metric_shift_p"))]
                    if has_metric
                    else []
                ),
            ]
        )
    n_tested = max(
        (int(m["metric_shift_p"]["n"]) for m in conds.values() if "metric_shift_p" in m),
        default=0,
    )
    lines += [
        "### Shifts (mean over prompts)",
        "",
        "Metric shift: intervened minus baseline, paired by prompt, with a bootstrap CI and a "
        f"p-value from the {signflip_method(n_tested)} "
        "(exact up to 20 prompts, Monte Carlo beyond). On control prompts these are the side "
        "effects."
        if has_metric
        else "Means over prompts with bootstrap CIs. On control prompts these are the side "
        "effects.",
        "",
        *table(
            [
                "set",
                "intervention",
                "top token changed",
                "p shift",
                "KL (all positions)",
                *(f"logit shift {cell(w)}" for w in words),
                *(["metric shift", "p"] if has_metric else []),
            ],
            summary,
        ),
        "",
    ]
    if generations:
        values = {g["condition"]: g.get("clamp_value") for g in generations}
        target = conditions_of(conds, "target")
        lines += [
            "### Continuations (judged, measured)",
            "",
            *effects_table(conds, target, values),
            "",
        ]
        tested = [c for c in target if "concept_p" in conds[c]]
        for c in tested:
            lines += [
                f"Concept score {cell(c)} vs baseline (paired): "
                f"{fmt_row(conds[c].get('concept_diff'))}, "
                f"Wilcoxon p = {p_text(conds[c].get('concept_p'))}.",
                "",
            ]
        control = conditions_of(conds, "control")
        if control:
            lines += specificity_table(conds, target, "control")
        lines += examples_table(generations, judgements)
    return lines
