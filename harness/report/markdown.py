"""Render a run as a Markdown lab report: provenance, dose–response tables, examples, judge.

Everything is rebuilt from the run store; generated text goes through :func:`cell` so that pipes,
newlines, backticks or HTML in model output cannot break a table.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from typing import Any

from harness.store import RunStore

__all__ = ["cell", "fmt_estimate", "render_report"]


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]#|"})


def cell(text: object, limit: int = 160) -> str:
    """Make any value safe inside a Markdown table cell (escaped, one line, bounded length)."""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s, quote=False).translate(_MD_SPECIAL)


def fmt_estimate(value: float, low: float, high: float, n: int) -> str:
    """``1.23 [0.90, 1.50] (n=16)``; ``–`` when there is nothing to estimate."""
    if n == 0 or math.isnan(value):
        return "– (n=0)"
    return f"{value:.2f} [{low:.2f}, {high:.2f}] (n={n})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _score_text(judgement: dict[str, Any] | None) -> str:
    if judgement is None:
        return "not judged"
    return "unscored" if judgement["score"] is None else str(judgement["score"])


def _feature_section(feat: dict[str, Any]) -> list[str]:
    label = feat.get("label") or "unlabelled"
    where = (
        f"; max activation {feat['max_activation']:.3f} from {cell(feat['max_activation_source'])}"
        if feat.get("max_activation") is not None
        else ""
    )
    lines = [f"Feature **{feat['feature']}** ({cell(label)}){where}.", ""]
    if feat.get("candidates") and feat.get("method") == "match":
        rows = [
            [str(rank), str(c["index"]), f"{c['score']:.3f}"]
            for rank, c in enumerate(feat["candidates"], start=1)
        ]
        lines += [
            "Matched across checkpoints by decoder cosine similarity:",
            "",
            *_table(["rank", "feature", "cosine"], rows),
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
            *_table(["rank", "feature", "score", "mean +", "mean −"], rows),
            "",
        ]
    return lines


_EXTRA_COLUMNS = (
    ("fluency_score", "fluency (0–2)"),
    ("instruction_score", "instruction (0–2)"),
    ("steering_score", "harmonic mean (0–1)"),
)


def _est(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    return fmt_estimate(row["value"], row["ci_low"], row["ci_high"], row["n"])


def _dose_response(
    conds: dict[str, dict[str, dict[str, Any]]], clamp_values: dict[str, float | None]
) -> list[str]:
    extra = [(m, title) for m, title in _EXTRA_COLUMNS if any(m in c for c in conds.values())]
    rows = []
    for cond, metrics in conds.items():
        value = clamp_values.get(cond)
        rows.append(
            [
                cell(cond),
                "–" if value is None else f"{value:.3f}",
                _est(metrics.get("concept_score")),
                _est(metrics.get("mention_rate")),
                *(_est(metrics.get(m)) for m, _ in extra),
                str(int(metrics["n_unscored"]["value"])),
            ]
        )
    header = [
        "condition",
        "clamp value",
        "concept (0–3)",
        "mention rate",
        *(title for _, title in extra),
        "unscored",
    ]
    return [
        "### Dose–response",
        "",
        "Each cell: mean judged score with a 95% bootstrap CI over prompts and its n; unscored "
        "judgements are excluded, never counted as 0 (the last column counts them for the concept "
        "rubric). The harmonic mean combines concept, instruction and fluency per item, each "
        "divided by its scale's maximum, as steering benchmarks do.",
        "",
        *_table(header, rows),
        "",
    ]


def render_report(store: RunStore, summary: list[dict[str, Any]]) -> str:
    """The whole report as Markdown text."""
    exp = store.experiment()
    prov = store.read_json("provenance.json")
    packages = ", ".join(f"{k} {v}" for k, v in prov.get("packages", {}).items())
    lines = [f"# {cell(exp.name)}", ""]
    if exp.description:
        lines += [cell(exp.description, 2000), ""]
    lines += [
        "## Provenance",
        "",
        *_table(
            ["item", "value"],
            [
                ["run", cell(store.run_id)],
                ["spec hash", f"`{exp.spec_hash()[:16]}`"],
                ["git commit", cell(f"{prov.get('git_commit')} (dirty: {prov.get('git_dirty')})")],
                ["model", cell(exp.model.model_dump(mode="json"))],
                ["device", cell(prov.get("device"))],
                ["judge", cell(prov.get("judge"))],
                ["rubric", cell(prov.get("rubric"))],
                ["packages", cell(packages, 400)],
            ],
        ),
        "",
    ]
    by_group: dict[tuple[str, str], dict[str, dict[str, dict[str, Any]]]] = defaultdict(dict)
    for row in summary:
        cond = by_group[(row["sae"], row["study"])].setdefault(row["condition"], {})
        cond[row["metric"]] = row
    features = {(f["sae"], f["study"]): f for f in store.records("feature")}
    generations = list(store.records("generation"))
    judgements = {j["of"]: j for j in store.judgements()}

    for (sae, study), conds in by_group.items():
        mine = [g for g in generations if g["sae"] == sae and g["study"] == study]
        lines += [f"## {cell(study)} on {cell(sae)}", ""]
        if (sae, study) in features:
            lines += _feature_section(features[(sae, study)])
        lines += _dose_response(conds, {g["condition"]: g["clamp_value"] for g in mine})
        examples = [
            [
                cell(g["condition"]),
                cell(g["prompt"], 60),
                cell(g["continuation"]),
                _score_text(judgements.get(g["key"])),
            ]
            for g in mine
            if g["prompt_index"] == 0
        ]
        lines += [
            "### Example continuations (first prompt)",
            "",
            *_table(["condition", "prompt", "continuation", "score"], examples),
            "",
        ]
    lines += _judge_section(store, prov)
    return "\n".join(lines)


def _judge_section(store: RunStore, prov: dict[str, Any]) -> list[str]:
    from harness.aggregate import judge_totals

    t = judge_totals(store)
    lines = [
        "## Judge",
        "",
        *_table(
            [
                "judge",
                "rubric",
                "judgements",
                "scored",
                "unscored",
                "from cache",
                "API calls",
                "tokens in / out",
                "cost (USD)",
            ],
            [
                [
                    cell(prov.get("judge")),
                    cell(prov.get("rubric")),
                    str(t["judgements"]),
                    str(t["scored"]),
                    str(t["unscored"]),
                    str(t["cached"]),
                    str(t["api_calls"]),
                    f"{t['input_tokens']} / {t['output_tokens']}",
                    f"{t['cost_usd']:.4f}",
                ]
            ],
        ),
        "",
    ]
    if t["unscored_reasons"]:
        lines += [
            "Unscored judgements are excluded from every mean above (never counted as 0):",
            "",
            *_table(
                ["reason", "count"],
                [[cell(r), str(n)] for r, n in sorted(t["unscored_reasons"].items())],
            ),
            "",
        ]
    return lines
