"""The SAE-quality table of a run report (``sae_lens.evals`` metrics with bootstrap CIs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.analysis.quality import QUALITY_NEEDS_CORPUS, QUALITY_STUDY, quality_measurable
from harness.store import RunStore
from harness.views.report.markdown_table import cell, fmt_estimate, table
from harness.views.report.quality_plots import quality_pictures

__all__ = ["QUALITY_COLUMNS", "quality_section"]

# (metric, column header, digits)
QUALITY_COLUMNS = (
    ("explained_variance", "explained variance", 3),
    ("l0", "L0", 1),
    ("dead_fraction", "dead fraction", 3),
    ("ce_loss_score", "CE-loss score", 3),
    ("ce_loss_increase", "CE increase (nats)", 3),
    ("kl_div_score", "KL score", 3),
    ("ce_loss_with_sae", "CE with SAE", 3),
    ("ce_loss_without_sae", "CE clean", 3),
    ("mse", "MSE", 3),
)


def quality_section(
    store: RunStore, summary: list[dict[str, Any]], plot_dir: Path | None = None
) -> list[str]:
    """One row per SAE and, with ``plot_dir``, the four pictures; empty when the run measured
    no SAE quality."""
    by_sae: dict[str, dict[str, dict[str, Any]]] = {}
    for row in summary:
        if row["study"] == QUALITY_STUDY:
            by_sae.setdefault(row["sae"], {})[row["metric"]] = row
    if not by_sae:
        exp = store.experiment()
        if exp.sae_quality is None or quality_measurable(exp):
            return []
        return ["## SAE quality", "", f"Not measured: {QUALITY_NEEDS_CORPUS}.", ""]
    records = {r["sae"]: r for r in store.records_in_spec_order(QUALITY_STUDY)}
    rows = []
    for sae, metrics in by_sae.items():
        cells = [cell(sae)]
        for metric, _, digits in QUALITY_COLUMNS:
            r = metrics.get(metric)
            cells.append(
                fmt_estimate(r["value"], r["ci_low"], r["ci_high"], r["n"], digits) if r else "–"
            )
        rows.append(cells)
    first = next(iter(records.values()))
    return [
        "## SAE quality",
        "",
        f"Measured with `sae_lens.evals`' definitions on {first['n_sequences']} sequences of "
        f"{first['context_size']} tokens from {cell(first['corpus'])} (special tokens excluded), "
        f"95% bootstrap CIs over sequences; the dead fraction counts features that never fired "
        f"on these {first['n_sequences'] * first['context_size']:,} tokens (no CI; it falls as "
        "more tokens are scanned). CE-loss score = share of the CE increase from zero-ablating "
        "the hook point that splicing in the SAE recovers (a weak baseline: zero-ablation "
        "destroys most of the model's loss), so the absolute CE increase per token the SAE adds "
        "is shown beside it; KL score likewise for KL divergence.",
        "",
        *table(["SAE", *(h for _, h, _ in QUALITY_COLUMNS)], rows),
        "",
        *_fit_lines(store, records),
        *(quality_pictures(records, plot_dir, "sae-quality") if plot_dir is not None else []),
    ]


def _fit_lines(store: RunStore, records: dict[str, dict[str, Any]]) -> list[str]:
    """The fit gate's verdict on every measured SAE (the run refused to steer a failing one)."""
    from harness.analysis.fit import fit_verdict
    from harness.analysis.quality import quality_values

    gate = store.experiment().fit_gate
    if gate is None:
        return ["Fit gate: off (fit_gate=None).", ""]
    lines = ['Fit gate (docs/metrics.md, "Fit gate"), before the first intervention:', ""]
    for sae, record in sorted(records.items()):
        lines.append(f"- {cell(sae)}: {fit_verdict(quality_values(record), gate)[1]}")
    return [*lines, ""]
