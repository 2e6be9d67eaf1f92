"""Report sections of the intervention studies: saturation sweeps and ablations.

Every aggregate is shown as ``mean [95% CI] (n=…)``; p-values with their n. Generated text and
tokens go through :func:`cell`. Metric definitions: docs/metrics.md.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from harness.plan import BASELINE, split_condition
from harness.report.markdown_table import cell, fmt_row, table
from harness.store import RunStore

__all__ = [
    "ablation_section",
    "feature_section",
    "next_token_table",
    "saturation_section",
]

Conds = dict[str, dict[str, dict[str, Any]]]  # condition → metric → summary row


def _p(row: dict[str, Any] | None) -> str:
    if row is None or math.isnan(row["value"]):
        return "–"
    p = row["value"]
    return f"{p:.3g} (n={row['n']})" if p >= 0.001 else f"<0.001 (n={row['n']})"


def _score_text(judgement: dict[str, Any] | None) -> str:
    if judgement is None:
        return "not judged"
    return "unscored" if judgement["score"] is None else str(judgement["score"])


def feature_section(feat: dict[str, Any]) -> list[str]:
    """Which feature(s), how they were found, and their activation statistics."""
    label = feat.get("label") or "unlabelled"
    indices = feat.get("features") or [feat["feature"]]
    lines = [
        f"Feature{'s' if len(indices) > 1 else ''} **{', '.join(map(str, indices))}** "
        f"({cell(label)}).",
        "",
    ]
    if feat.get("max_activation") is not None:
        q = feat.get("quantiles") or {}
        qs = ", ".join(f"{k} {v:.3f}" for k, v in q.items())
        freq = feat.get("frequency")
        lines += [
            f"Activation statistics of feature {indices[0]} from "
            f"{cell(feat['max_activation_source'])} ({feat.get('stats_tokens')} tokens): "
            f"max {feat['max_activation']:.3f}"
            + (f", fires on {freq:.2%} of tokens" if freq is not None else "")
            + (f", quantiles of its positive activations: {qs}" if qs else "")
            + ". Levels in × max activation are multiples of this max.",
            "",
        ]
    if feat.get("candidates") and feat.get("method") == "match":
        rows = [
            [str(rank), str(c["index"]), f"{c['score']:.3f}"]
            for rank, c in enumerate(feat["candidates"], start=1)
        ]
        lines += [
            "Matched across checkpoints by decoder cosine similarity:",
            "",
            *table(["rank", "feature", "cosine"], rows),
            "",
        ]
    elif feat.get("candidates"):
        rows = [
            [
                str(rank),
                str(c["index"]),
                f"{c['score']:.3f}",
                f"{c['mean_positive']:.3f}",
                f"{c['mean_negative']:.3f}",
            ]
            for rank, c in enumerate(feat["candidates"], start=1)
        ]
        lines += [
            "Contrastive candidates (mean activation difference, positive − negative):",
            "",
            *table(["rank", "feature", "score", "mean +", "mean −"], rows),
            "",
        ]
    return lines


_JUDGED = (
    ("concept_score", "concept (0–3)"),
    ("mention_rate", "mention rate"),
    ("fluency_score", "fluency (0–2)"),
    ("instruction_score", "instruction (0–2)"),
    ("steering_score", "harmonic mean (0–1)"),
)
_MEASURED = (
    ("drift", "drift from unclamped"),
    ("concept_gain", "concept gain"),
    ("perplexity", "perplexity"),
    ("kl_mean", "KL next-token"),
)


def _conditions(conds: Conds, prompt_set: str) -> list[str]:
    """Conditions of one prompt set, in run order (baseline first), without synthetic rows."""
    out = []
    for cond in conds:
        pset, _ = split_condition(cond)
        if pset == prompt_set and cond not in ("trend", "recommended"):
            out.append(cond)
    return out


def _effects_table(
    conds: Conds, conditions: list[str], values: dict[str, float | None]
) -> list[str]:
    judged = [(m, t) for m, t in _JUDGED if any(m in conds[c] for c in conditions)]
    measured = [(m, t) for m, t in _MEASURED if any(m in conds[c] for c in conditions)]
    rows = []
    for cond in conditions:
        metrics = conds[cond]
        value = values.get(cond)
        unscored = metrics.get("n_unscored")
        rows.append(
            [
                cell(split_condition(cond)[1]),
                "–" if value is None else f"{value:.3f}",
                *(fmt_row(metrics.get(m)) for m, _ in judged),
                *(fmt_row(metrics.get(m)) for m, _ in measured),
                "–" if unscored is None else str(int(unscored["value"])),
            ]
        )
    header = ["condition", "clamp value", *(t for _, t in judged), *(t for _, t in measured)]
    return table([*header, "unscored"], rows)


def _examples(generations: list[dict[str, Any]], judgements: dict[str, Any]) -> list[str]:
    rows = [
        [
            cell(g["condition"]),
            cell(g["prompt"], 60),
            cell(g["continuation"]),
            _score_text(judgements.get(g["key"])),
        ]
        for g in generations
        if g["prompt_index"] == 0
    ]
    if not rows:
        return []
    return [
        "### Example continuations (first prompt of each set)",
        "",
        *table(["condition", "prompt", "continuation", "concept score"], rows),
        "",
    ]


def _plot_name(sae: str, study: str, what: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{sae}-{study}-{what}") + ".png"


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


def saturation_section(
    store: RunStore, sae: str, study: str, conds: Conds, plot_dir: Path | None
) -> list[str]:
    """Dose–response with CIs, paired tests and trend, recommended level, clamp specificity,
    example continuations."""
    features = {(f["sae"], f["study"]): f for f in store.records("feature")}
    generations = [
        g for g in store.records("generation") if g["sae"] == sae and g["study"] == study
    ]
    judgements = {j["of"]: j for j in store.judgements()}
    values = {g["condition"]: g.get("clamp_value") for g in generations}
    lines = [f"## {cell(study)} on {cell(sae)}", ""]
    if (sae, study) in features:
        lines += feature_section(features[(sae, study)])
    target = _conditions(conds, "target")
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
        *_effects_table(conds, target, values),
        "",
    ]
    if plot_dir is not None and target:
        name = _plot_name(sae, study, "dose")
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
                        _p(conds[c].get("concept_p")),
                        _p(conds[c].get("concept_p_holm")),
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
            f"{stat:.1f}, p = {_p(trend.get('trend_p'))}.",
            "",
        ]
    rec = conds.get("recommended", {})
    if rec:
        threshold = _threshold(store, study)
        level = rec["level"]["value"]
        if math.isnan(level):
            lines += [
                f"Recommended level: none; no level kept mean judged fluency ≥ {threshold:g} on "
                f"the selection half (n={rec['level']['n']} prompts).",
                "",
            ]
        else:
            lines += [
                f"Recommended level: **{level:g}** (best concept score with mean judged fluency "
                f"≥ {threshold:g}, chosen on a seeded half of the prompts, n={rec['level']['n']}); "
                f"on the other half: concept {fmt_row(rec.get('concept_score_heldout'))}, fluency "
                f"{fmt_row(rec.get('fluency_score_heldout'))}.",
                "",
            ]
    neutral = _conditions(conds, "neutral")
    if neutral:
        lines += _specificity_table(conds, target, "neutral")
        lines += [
            "### Neutral prompts",
            "",
            *_effects_table(conds, neutral, values),
            "",
        ]
    lines += _examples(generations, judgements)
    return lines


def _threshold(store: RunStore, study: str) -> float:
    for s in store.experiment().studies:
        if s.name == study:
            return float(getattr(s, "fluency_threshold", float("nan")))
    return float("nan")


def _specificity_table(conds: Conds, target: list[str], other: str) -> list[str]:
    rows = []
    for cond in target:
        if cond == BASELINE:
            continue
        o = conds.get(f"{other}:{cond}", {})
        t = conds[cond]
        rows.append(
            [
                cell(cond),
                fmt_row(t.get("drift")),
                fmt_row(t.get("concept_gain")),
                fmt_row(o.get("drift")),
                fmt_row(o.get("kl_mean")),
            ]
        )
    return [
        "### Clamp specificity",
        "",
        f"`target_affected`: drift (and concept gain) on the target prompts; `neutral_unchanged`: "
        f"drift and next-token KL on the {other} prompts, which a specific intervention leaves "
        "near 0.",
        "",
        *table(
            [
                "condition",
                "target_affected: drift",
                "target concept gain",
                f"neutral_unchanged: {other} drift",
                f"{other} KL",
            ],
            rows,
        ),
        "",
    ]


def next_token_table(records: list[dict[str, Any]]) -> list[str]:
    """The changed/unchanged next-token table: one row per prompt and intervention."""
    words = list(records[0]["logit_shift"]) if records else []
    has_metric = bool(records) and "metric_base" in records[0]
    rows = []
    for r in records:
        rows.append(
            [
                cell(r["prompt_set"]),
                cell(r["prompt"], 60),
                f"{cell(r['base_top'], 20)} ({r['base_top_p']:.2f})",
                f"{cell(r['iv_top'], 20)} ({r['iv_top_p']:.2f})",
                "changed" if r["changed"] else "unchanged",
                f"{r['p_shift']:+.3f}",
                f"{r['kl_last']:.3f}",
                *(f"{r['logit_shift'][w]:+.3f}" for w in words),
                *([f"{r['metric_iv'] - r['metric_base']:+.3f}"] if has_metric else []),
            ]
        )
    header = [
        "set",
        "prompt",
        "baseline top (p)",
        "intervened top (p)",
        "top token",
        "p shift",
        "KL",
        *(f"logit shift {cell(w)}" for w in words),
        *(["metric shift"] if has_metric else []),
    ]
    return table(header, rows)


def ablation_section(
    store: RunStore, sae: str, study: str, conds: Conds, plot_dir: Path | None
) -> list[str]:
    """Next-token tables (target and control prompts), shifts with CIs and paired tests, judged
    continuations and drift, side effects on control prompts."""
    features = {(f["sae"], f["study"]): f for f in store.records("feature")}
    records = [r for r in store.records("next_token") if r["sae"] == sae and r["study"] == study]
    generations = [
        g for g in store.records("generation") if g["sae"] == sae and g["study"] == study
    ]
    judgements = {j["of"]: j for j in store.judgements()}
    lines = [f"## {cell(study)} on {cell(sae)}", ""]
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
                    [fmt_row(metrics.get("metric_shift")), _p(metrics.get("metric_shift_p"))]
                    if has_metric
                    else []
                ),
            ]
        )
    lines += [
        "### Shifts (mean over prompts)",
        "",
        "Metric shift: intervened minus baseline, paired by prompt, with a bootstrap CI and a "
        "sign-flip permutation p-value. On control prompts these are the side effects.",
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
        target = _conditions(conds, "target")
        lines += [
            "### Continuations (judged, measured)",
            "",
            *_effects_table(conds, target, values),
            "",
        ]
        tested = [c for c in target if "concept_p" in conds[c]]
        for c in tested:
            lines += [
                f"Concept score {cell(c)} vs baseline (paired): "
                f"{fmt_row(conds[c].get('concept_diff'))}, "
                f"Wilcoxon p = {_p(conds[c].get('concept_p'))}.",
                "",
            ]
        control = _conditions(conds, "control")
        if control:
            lines += _specificity_table(conds, target, "control")
        lines += _examples(generations, judgements)
    return lines
