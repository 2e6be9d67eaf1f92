"""Render a run as a Markdown lab report: provenance, dose–response tables, examples, judge.

Everything is rebuilt from the run store; generated text goes through :func:`cell` so that pipes,
newlines, backticks or HTML in model output cannot break a table.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.report.findings import attribution_section, contrast_section, specificity_section
from harness.report.markdown_table import cell, fmt_estimate, table
from harness.store import RunStore

__all__ = ["cell", "fmt_estimate", "render_report", "write_report"]


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
        *table(header, rows),
        "",
    ]


def render_report(
    store: RunStore, summary: list[dict[str, Any]], plot_dir: Path | None = None
) -> str:
    """The whole report as Markdown text; plots (if any) are written into ``plot_dir``, which
    must sit next to the report file (the Markdown links to it by its name)."""
    exp = store.experiment()
    prov = store.read_json("provenance.json")
    packages = ", ".join(f"{k} {v}" for k, v in prov.get("packages", {}).items())
    lines = [f"# {cell(exp.name)}", ""]
    if exp.description:
        lines += [cell(exp.description, 2000), ""]
    lines += [
        "## Provenance",
        "",
        *table(
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

    kinds = {s.name: s.kind for s in exp.studies}
    for (sae, study), conds in by_group.items():
        if kinds.get(study) == "attribution":
            continue  # its section follows, from the attribution records
        if kinds.get(study) == "specificity":
            lines += specificity_section(store, sae, study, conds, plot_dir)
            continue
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
            *table(["condition", "prompt", "continuation", "score"], examples),
            "",
        ]
    for study_name, kind in kinds.items():
        if kind == "attribution":
            for sae_label in dict.fromkeys(r["sae"] for r in store.records("attribution")):
                lines += attribution_section(store, sae_label, study_name, plot_dir)
        if kind == "contrast":
            for sae_label in dict.fromkeys(r["sae"] for r in store.records("candidates")):
                lines += contrast_section(store, sae_label, study_name)
    lines += _judge_section(store, prov)
    return "\n".join(lines)


def _judge_section(store: RunStore, prov: dict[str, Any]) -> list[str]:
    from harness.aggregate import judge_totals

    t = judge_totals(store)
    lines = [
        "## Judge",
        "",
        *table(
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
            *table(
                ["reason", "count"],
                [[cell(r), str(n)] for r, n in sorted(t["unscored_reasons"].items())],
            ),
            "",
        ]
    return lines


def write_report(store: RunStore, summary: list[dict[str, Any]], reports_dir: Path) -> Path:
    """Write ``<reports_dir>/<run id>.md`` (plots in ``<run id>-files/``); returns its path."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"{store.run_id}.md"
    path.write_text(render_report(store, summary, reports_dir / f"{store.run_id}-files"))
    return path
