"""The saturation sweep's report section: dose–response with CIs and a plot, each level vs the
baseline, the trend, the recommended level, clamp specificity and example continuations."""

from __future__ import annotations

import math
import re
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
    judged_by,
    p_text,
    plot_name,
    specificity_table,
)
from harness.views.report.markdown_table import cell, fmt_row, table
from harness.views.report.outcomes import outcomes_section

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
    lines = [f"## {cell(study)} on {cell(sae)}", "", judged_by(store), ""]
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
        unit = "× max activation" if any(c.endswith("x") for c in target) else "value"
        caption = _dose_plot(conds, target, plot_dir / name, f"{study} on {sae}", unit)
        lines += [f"![dose–response]({plot_dir.name}/{name})", "", caption, ""]
    tested = [c for c in target if "concept_p" in conds[c]]
    if tested:
        lines += [
            "### Each level vs baseline (paired by prompt)",
            "",
            "Concept-score difference with a paired bootstrap CI; Wilcoxon signed-rank p-value, "
            "and Holm-adjusted over the levels of this sweep.",
            "",
            *table(
                ["condition", "concept diff", "p", "p (Holm)", "CI and test"],
                [
                    [
                        cell(c),
                        fmt_row(conds[c].get("concept_diff")),
                        p_text(conds[c].get("concept_p")),
                        p_text(conds[c].get("concept_p_holm")),
                        "**disagree**" if ci_test_disagree(conds[c]) else "agree",
                    ]
                    for c in tested
                ],
            ),
            "",
        ]
        split = [c for c in tested if ci_test_disagree(conds[c])]
        if split:
            lines += [
                f"At {', '.join(split)} the paired bootstrap CI and the Holm-adjusted test "
                f"disagree (one clears α = {ALPHA:g}, the other does not): the difference from the "
                "baseline there is not established; more prompts would settle it.",
                "",
            ]
    lines += outcomes_section(conds, target, plot_dir, sae, study)
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
            chosen = next((c for c in tested if _level(c) == level), None)
            if chosen is not None and ci_test_disagree(conds[chosen]):
                lines[-1:] = [
                    f"**Flag:** at the recommended level the paired CI of the gain over baseline "
                    f"is {fmt_row(conds[chosen].get('concept_diff'))} but the Holm-adjusted p is "
                    f"{p_text(conds[chosen].get('concept_p_holm'))}: the two disagree, so its gain "
                    "is not established at the sweep's multiple-testing level.",
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


ALPHA = 0.05  # the level both the CI (95%) and the Holm-adjusted test are read at


def ci_test_disagree(row: dict[str, dict[str, float]]) -> bool:
    """Whether a level's paired bootstrap CI (excluding 0 as shown, 2 decimals) and its
    Holm-adjusted Wilcoxon test (p < α) reach different answers."""
    diff, p = row.get("concept_diff"), row.get("concept_p_holm")
    if diff is None or p is None or diff["n"] == 0 or math.isnan(diff["ci_low"]):
        return False
    if math.isnan(p["value"]):
        return False
    ci = round(diff["ci_low"], 2) > 0 or round(diff["ci_high"], 2) < 0
    return ci != (p["value"] < ALPHA)


def _level(condition: str) -> float | None:
    """The clamp level a target condition names (``10x`` → 10, ``v=3.5`` → 3.5), else None."""
    match = re.fullmatch(r"(?:v=)?(-?[0-9.]+(?:e-?[0-9]+)?)x?", split_condition(condition)[1])
    return float(match.group(1)) if match else None


_PANELS = (
    ("concept_score", "concept (0–3)", (0, 3)),
    ("fluency_score", "fluency (0–2)", (0, 2)),
    ("drift", "drift from unclamped (0–1)", (0, 1)),
)


def _dose_plot(conds: Conds, conditions: list[str], path: Path, title: str, unit: str) -> str:
    """One panel per scale (concept, fluency, drift), the level on a numeric x axis, every
    point with its 95% CI and the unclamped baseline as a band; returns the caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    levels = sorted((lv, c) for c in conditions if (lv := _level(c)) is not None)
    panels = [p for p in _PANELS if any(conds[c].get(p[0]) for _, c in levels)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), squeeze=False)
    ns: set[int] = set()
    for ax, (metric, label, limits) in zip(axes[0], panels, strict=True):
        pts = [(lv, conds[c][metric]) for lv, c in levels if conds[c].get(metric)]
        ns |= {r["n"] for _, r in pts}
        xs = [lv for lv, _ in pts]
        ys = [r["value"] for _, r in pts]
        err = [
            [r["value"] - r["ci_low"] for _, r in pts],
            [r["ci_high"] - r["value"] for _, r in pts],
        ]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3)
        base = conds.get("baseline", {}).get(metric)
        if base:
            ax.axhline(base["value"], color="grey", linestyle="--", linewidth=1, label="unclamped")
            ax.axhspan(base["ci_low"], base["ci_high"], color="grey", alpha=0.15)
            ax.legend(fontsize=7, loc="best")
        ax.set_ylim(limits[0] - 0.05 * limits[1], limits[1] * 1.05)
        ax.set_xlabel(f"clamp level ({unit})")
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    n = "n=" + ("/".join(str(v) for v in sorted(ns)) if ns else "0")
    return (
        f"Dose–response: mean per level with its 95% bootstrap CI over prompts ({n} per point); "
        "the dashed line and band are the unclamped baseline with its CI; one panel per scale."
    )
