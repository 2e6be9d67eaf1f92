"""The Markdown checkpoint-comparison report: one side-by-side table per study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.analysis.compare import Checkpoint, ComparisonRow, FeatureMatch
from harness.analysis.compare_rows import MIN_N, verdict
from harness.analysis.quality import QUALITY_STUDY
from harness.analysis.stats import Estimate
from harness.views.report.markdown_table import cell, fmt_estimate, table
from harness.views.report.quality import QUALITY_COLUMNS
from harness.views.report.quality_plots import quality_pictures

__all__ = ["render_comparison", "write_comparison"]

_DIGITS = {metric: digits for metric, _, digits in QUALITY_COLUMNS}
_PAIRING = {
    "sequences": "paired over the same token sequences",
    "prompts": "paired over the same prompts",
    "unpaired": "independent bootstrap (contexts are sampled per feature)",
    "none": "no CI (a single statistic per checkpoint)",
}


def _verdict(row: ComparisonRow, d: Estimate, digits: int) -> str:
    word = verdict(row, d, digits)  # at the precision shown: a CI touching 0 is no verdict
    return f" **{word}**" if word in ("better", "worse") else f" {word}" if word else ""


def _row_cells(row: ComparisonRow) -> list[str]:
    digits = _DIGITS.get(row.metric, 2 if row.study != QUALITY_STUDY else 3)
    cells = [fmt_estimate(e.value, e.ci_low, e.ci_high, e.n, digits) for e in row.values]
    cells += [
        fmt_estimate(d.value, d.ci_low, d.ci_high, d.n, digits) + _verdict(row, d, digits)
        for d in row.differences
    ]
    return cells


def render_comparison(
    checkpoints: list[Checkpoint],
    rows: list[ComparisonRow],
    matches: list[FeatureMatch],
    note: str,
    plot_dir: Path | None = None,
) -> str:
    """The comparison as Markdown; with ``plot_dir`` (next to the report) the SAE-quality
    pictures, one line or panel per checkpoint."""
    ref = checkpoints[0].name
    names = [cell(c.name) for c in checkpoints]
    diff_heads = [f"Δ {cell(c.name)} − ref" for c in checkpoints[1:]]
    lines = [
        "# Checkpoint comparison",
        "",
        f"Reference: **{cell(ref)}**. Every value has its 95% bootstrap CI and n; each Δ is the "
        "difference from the reference with a bootstrap CI (paired where the same sequences or "
        "prompts were measured). **better**/**worse** (or higher/lower where the metric has no "
        f"direction) marks a Δ whose CI excludes 0; such a Δ over fewer than {MIN_N} items, or "
        "on scores of the keyword-only offline judge alone (it counts the spec's concept "
        "words, so a checkpoint that steers to other words scores low), is marked inconclusive "
        "instead. The default offline judge also reads meaning (a sentence-embedding margin "
        "calibrated on the toy world). Judged scores of runs judged by different judges are "
        "read with one judge that judged them all (the reference's first); the judge column "
        "says whose scores each checkpoint's are.",
        "",
        *table(
            ["checkpoint", "run", "SAE", "judge"],
            [
                [
                    cell(c.name),
                    cell(c.run.run_id),
                    cell(c.ref().model_dump(mode="json", exclude_none=True), 200),
                    cell(c.run.provenance.get("judge", "–")),
                ]
                for c in checkpoints
            ],
        ),
        "",
    ]
    quality = [r for r in rows if r.study == QUALITY_STUDY]
    if quality:
        pairing = _PAIRING[quality[0].pairing]
        lines += [
            "## SAE quality",
            "",
            f"`sae_lens.evals` metrics on the same token sequences for every checkpoint; Δ "
            f"{pairing}. Dead fraction: features that never fired on these tokens (no CI).",
            "",
            *table(
                ["metric", *names, *diff_heads],
                [[cell(r.metric), *_row_cells(r)] for r in quality],
            ),
            "",
        ]
        if plot_dir is not None:
            lines += quality_pictures(_quality_records(checkpoints), plot_dir, "sae-quality")
    studies = dict.fromkeys(r.study for r in rows if r.study != QUALITY_STUDY)
    for study in studies:
        mine = [r for r in rows if r.study == study]
        pairings = ", ".join(sorted({_PAIRING[r.pairing] for r in mine}))
        lines += [
            f"## {cell(study)}",
            "",
            f"Δ: {pairings}.",
            "",
            *table(
                ["condition", "metric", *names, *diff_heads],
                [[cell(r.condition), cell(r.metric), *_row_cells(r)] for r in mine],
            ),
            "",
        ]
    lines += _humans(checkpoints)
    if matches:
        lines += [
            "## Features matched across checkpoints",
            "",
            "Each checkpoint's feature per study, the cosine of its decoder direction with the "
            "reference's feature, and the reference feature's closest decoder direction in each "
            "checkpoint (the match a `FeatureByMatch` reference would pick).",
            "",
        ]
        head = ["study", f"{cell(ref)} feature"]
        for c in checkpoints[1:]:
            head += [f"{cell(c.name)} feature (cos)", f"best match in {cell(c.name)} (cos)"]
        body = []
        for m in matches:
            cells = [cell(m.study), _feature(m.features[0], m.labels[0])]
            for i in range(1, len(checkpoints)):
                cos = m.cosine_to_reference[i]
                cells.append(
                    _feature(m.features[i], m.labels[i]) + ("" if cos is None else f" ({cos:.2f})")
                )
                best = m.best_match[i] if m.best_match else None
                cells.append("–" if best is None else f"{best[0]} ({best[1]:.2f})")
            body.append(cells)
        lines += [*table(head, body), ""]
        if note:
            lines += [cell(note, 400), ""]
    return "\n".join(lines)


def _humans(checkpoints: list[Checkpoint]) -> list[str]:
    """Each run's judges against its human labels, where it has any."""
    from harness.analysis.judge_validity import human_agreements, judgement_rows, run_texts

    body = []
    runs = {id(c.run): c.run for c in checkpoints}
    for run in runs.values():
        for a in human_agreements(judgement_rows(run), run_texts(run)):
            body.append(
                [
                    cell(run.run_id),
                    cell(a.rubric),
                    cell(a.first),
                    cell(a.second),
                    *(
                        fmt_estimate(e.value, e.ci_low, e.ci_high, e.n)
                        for e in (a.exact, a.kappa, a.weighted_kappa)
                    ),
                ]
            )
    if not body:
        return []
    head = ["run", "rubric", "judge", "annotator", "exact agreement", "κ", "weighted κ"]
    return [
        "## Judges against humans",
        "",
        "Where a run holds human labels (`harness label import`); a judged Δ resting on a judge "
        "below the spec's `judge.min_kappa_vs_humans` says 'judge not validated' instead of "
        "better/worse.",
        "",
        *table(head, body),
        "",
    ]


def _feature(index: int | None, label: str | None) -> str:
    if index is None:
        return "–"
    return f"{index}" + (f" ({cell(label)})" if label else "")


def write_comparison(
    checkpoints: list[Checkpoint],
    rows: list[ComparisonRow],
    matches: list[FeatureMatch],
    note: str,
    path: Path,
) -> Path:
    """Write the comparison report (pictures in ``<name>-files/``); returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_dir = path.with_name(f"{path.stem}-files")
    path.write_text(render_comparison(checkpoints, rows, matches, note, plot_dir))
    return path


def _quality_records(checkpoints: list[Checkpoint]) -> dict[str, dict[str, Any]]:
    """Checkpoint name → its SAE-quality record (those that have one)."""
    from harness.store import RunStore

    out = {}
    for c in checkpoints:
        store = RunStore(c.run.directory)
        for r in store.records(QUALITY_STUDY):
            if r["sae"] == c.sae:
                out[c.name] = r
    return out
