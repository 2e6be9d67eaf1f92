"""The saturation sweep's report section: dose–response with CIs and a plot, each level vs the
baseline, the trend, the recommended level, clamp specificity and example continuations."""

from __future__ import annotations

import math
from pathlib import Path

from harness.studies.contract import RunStore
from harness.studies.controls import parse_control
from harness.studies.items import split_condition
from harness.views.report.effects import (
    Conds,
    conditions_of,
    effects_table,
    examples_table,
    feature_section,
    p_text,
    plot_name,
    specificity_table,
)
from harness.views.report.markdown_table import cell, fmt_row, table

__all__ = ["saturation_section"]


def saturation_section(
    store: RunStore,
    sae: str,
    study: str,
    conds: Conds,
    plot_dir: Path | None,
    threshold: float,
    unit: str = " × max",
) -> list[str]:
    """Dose–response with CIs, paired tests and trend, recommended level, clamp specificity,
    example continuations."""
    features = {(f["sae"], f["study"]): f for f in store.records("feature")}
    generations = [
        g
        for g in store.records("generation")
        if g["sae"] == sae and g["study"] == study and parse_control(g["condition"]) is None
    ]
    judgements = {j["of"]: j for j in store.judgements()}
    values = {g["condition"]: g.get("clamp_value") for g in generations}
    lines = [f"## {cell(study)} on {cell(sae)}", ""]
    if (sae, study) in features:
        lines += feature_section(features[(sae, study)])
    target = conditions_of(conds, "target")
    lines += [
        "### Dose–response (target prompts)",
        "",
        "Each cell: mean with a 95% bootstrap CI over prompts and its n. Judged scores exclude "
        "unscored judgements, never counting them as 0 (the last column counts them for the "
        "concept rubric). Drift: 1 − cosine similarity of sentence embeddings between the "
        "continuation and the unclamped continuation of the same prompt; concept gain: change in "
        "similarity to the concept's description; perplexity: of the continuation under the "
        "unclamped model; KL: of the next-token distribution over the prompt's positions "
        "(docs/metrics.md).",
        "",
        *effects_table(conds, target, values),
        "",
    ]
    if plot_dir is not None and target:
        name = plot_name(sae, study, "dose")
        _dose_plot(conds, target, plot_dir / name, f"{study} on {sae}")
        lines += [f"![dose–response]({plot_dir.name}/{name})", ""]
    tested = [c for c in target if "concept_p" in conds[c]]
    if tested:
        lines += [
            "### Each level vs baseline (paired by prompt)",
            "",
            "Concept-score difference with a paired bootstrap CI; Wilcoxon signed-rank p-value, "
            "and Holm-adjusted over the levels of this sweep.",
            "",
            *table(
                ["condition", "concept diff", "p", "p (Holm)"],
                [
                    [
                        cell(c),
                        fmt_row(conds[c].get("concept_diff")),
                        p_text(conds[c].get("concept_p")),
                        p_text(conds[c].get("concept_p_holm")),
                    ]
                    for c in tested
                ],
            ),
            "",
        ]
    trend = conds.get("trend", {})
    if trend:
        stat = trend["page_L"]["value"]
        lines += [
            f"Trend across levels (Page's L test, increasing concept score): L = "
            f"{stat:.1f}, p = {p_text(trend.get('trend_p'))}.",
            "",
        ]
    rec = conds.get("recommended", {})
    if rec:
        level = rec["level"]["value"]
        if math.isnan(level):
            lines += [
                "Recommended level: none. No level met the criterion on the selection half "
                f"(n={rec['level']['n']} prompts): raise the mean concept score above the "
                f"unclamped baseline's on the same prompts while keeping mean judged fluency ≥ "
                f"{threshold:g}.",
                "",
            ]
        else:
            lines += [
                f"Recommended level: **{level:g}{unit}** (the best concept score among the levels "
                "that raise it above the unclamped baseline on the same prompts, with mean judged "
                f"fluency ≥ {threshold:g}; chosen on a seeded half of the prompts, "
                f"n={rec['level']['n']}); "
                f"on the other half: concept {fmt_row(rec.get('concept_score_heldout'))}, fluency "
                f"{fmt_row(rec.get('fluency_score_heldout'))}.",
                "",
            ]
    neutral = conditions_of(conds, "neutral")
    if neutral:
        lines += specificity_table(conds, target, "neutral")
        lines += [
            "### Neutral prompts",
            "",
            *effects_table(conds, neutral, values),
            "",
        ]
    lines += examples_table(generations, judgements)
    return lines


def _dose_plot(conds: Conds, conditions: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = list(range(len(conditions)))
    for metric, label in (("concept_score", "concept (0–3)"), ("fluency_score", "fluency (0–2)")):
        rows = [conds[c].get(metric) for c in conditions]
        if not any(rows):
            continue
        ys = [r["value"] if r else float("nan") for r in rows]
        lo = [r["value"] - r["ci_low"] if r else 0 for r in rows]
        hi = [r["ci_high"] - r["value"] if r else 0 for r in rows]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
    drift = [conds[c].get("drift") for c in conditions]
    if any(drift):
        ax.plot(
            xs,
            [3 * r["value"] if r else float("nan") for r in drift],
            "k--",
            marker="s",
            label="drift × 3",
        )
    ax.set_xticks(xs, [split_condition(c)[1] for c in conditions])
    ax.set_xlabel("condition")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
