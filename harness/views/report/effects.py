"""Report pieces the intervention studies share (saturation sweeps and ablations).

Every aggregate is shown as ``mean [95% CI] (n=…)``; p-values with their n. Generated text and
tokens go through :func:`cell`. Metric definitions: docs/metrics.md.
"""

from __future__ import annotations

import math
import re
from typing import Any

from harness.studies.items import BASELINE, split_condition
from harness.views.report.markdown_table import cell, fmt_row, table

__all__ = [
    "Conds",
    "conditions_of",
    "effects_table",
    "examples_table",
    "feature_section",
    "judged_by",
    "next_token_table",
    "p_text",
    "plot_name",
    "score_text",
    "specificity_table",
]

Conds = dict[str, dict[str, dict[str, Any]]]  # condition → metric → summary row


def p_text(row: dict[str, Any] | None) -> str:
    if row is None or math.isnan(row["value"]):
        return "–"
    p = row["value"]
    return f"{p:.3g} (n={row['n']})" if p >= 0.001 else f"<0.001 (n={row['n']})"


def score_text(judgement: dict[str, Any] | None) -> str:
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


def conditions_of(conds: Conds, prompt_set: str) -> list[str]:
    """Conditions of one prompt set, in run order (baseline first), without synthetic rows."""
    out = []
    for cond in conds:
        pset, _ = split_condition(cond)
        if pset == prompt_set and cond not in ("trend", "recommended"):
            out.append(cond)
    return out


def effects_table(
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


def judged_by(store: Any) -> str:
    """The sentence that names the judge behind a section's judged scores and verdicts."""
    prov = store.read_json("provenance.json")
    return (
        f"Judged scores and the verdicts on them in this section: judge `{prov.get('judge')}` "
        "(rubric versions, and agreement with any other judge that scored the same items, in "
        "the Judge section)."
    )


def examples_table(generations: list[dict[str, Any]], judgements: dict[str, Any]) -> list[str]:
    rows = [
        [
            cell(g["condition"]),
            cell(g["prompt"], 60),
            cell(g["continuation"]),
            score_text(judgements.get(g["key"])),
        ]
        for g in generations
        if g["prompt_index"] == 0
    ]
    if not rows:
        return []
    judge = cell(next((j["judge"] for j in judgements.values() if j.get("judge")), "no judgement"))
    return [
        "### Example continuations (first prompt of each set)",
        "",
        *table(["condition", "prompt", "continuation", f"concept score ({judge})"], rows),
        "",
    ]


def plot_name(sae: str, study: str, what: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{sae}-{study}-{what}") + ".png"


def specificity_table(conds: Conds, target: list[str], other: str) -> list[str]:
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
