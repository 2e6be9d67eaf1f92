"""The four SAE-quality pictures: feature firing frequency (log scale, dead and dense features
marked), L0 per token, the distribution of non-zero activation magnitudes, and a heat map of the
most frequent features over the first tokens of a sequence.

Drawn from a quality record's ``distributions`` (:mod:`harness.engine.sae_quality`); with several
records (``harness compare``) the first three overlay one line per checkpoint and the heat maps sit
side by side. A record stored before the pictures existed has no distributions and is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DENSE_FREQUENCY", "quality_pictures"]

DENSE_FREQUENCY = 0.1  # a feature firing on more than this share of tokens is called dense


def _tokens(record: dict[str, Any]) -> int:
    return int(sum(record["per_sequence"]["tokens"]))


def quality_pictures(records: dict[str, dict[str, Any]], plot_dir: Path, stem: str) -> list[str]:
    """Write the four PNGs for ``records`` (name → quality record) into ``plot_dir``; returns the
    Markdown that shows them (empty when no record has distributions)."""
    have = {name: r for name, r in records.items() if r.get("distributions")}
    if not have:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
    lines = []
    for what, draw in (
        ("firing-frequency", _frequency),
        ("l0-per-token", _l0),
        ("activation-magnitudes", _magnitudes),
        ("top-feature-heatmap", _heatmap),
    ):
        name = f"{stem}-{what}.png"
        fig = draw(plt, have)
        fig.tight_layout()
        fig.savefig(plot_dir / name, dpi=100)
        plt.close(fig)
        lines += [f"![{what.replace('-', ' ')}]({plot_dir.name}/{name})", ""]
    counts = ", ".join(f"{n}: {_tokens(r):,} tokens" for n, r in have.items())
    return [
        f"Pictures from the same tokens ({counts}; special tokens excluded): firing frequency "
        f"per feature on a log scale (dead features, which never fired, counted at the left; "
        f"dense ones fire on more than {DENSE_FREQUENCY:.0%} of tokens), active features per "
        "token (L0), the magnitudes of non-zero activations, and the most frequent features' "
        "activations on the first tokens of the first sequence.",
        "",
        *lines,
    ]


def _label(ax: Any, x: str, y: str, title: str) -> None:
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.legend(fontsize=8)


def _frequency(plt: Any, records: dict[str, dict[str, Any]]) -> Any:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    lowest = min(
        (
            float(np.log10(f[f > 0].min() / max(_tokens(r), 1)))
            for r in records.values()
            if (f := np.asarray(r["distributions"]["fire_counts"], dtype=float)).any()
        ),
        default=-1.0,
    )
    edges = np.arange(min(np.floor(lowest) - 0.5, -3.0), 0.0 + 1e-9, 0.125)
    for i, (name, r) in enumerate(records.items()):
        counts = np.asarray(r["distributions"]["fire_counts"], dtype=float)
        freq = counts / max(_tokens(r), 1)
        dead = int((counts == 0).sum())
        dense = int((freq > DENSE_FREQUENCY).sum())
        alive = np.log10(freq[counts > 0])
        ax.hist(
            alive,
            bins=edges,
            histtype="step",
            color=f"C{i}",
            linewidth=1.5,
            label=f"{name}: {dead} dead, {dense} dense of {len(counts)}",
        )
        if dead:  # one bar per checkpoint, side by side, left of the scale
            width = 0.3 / len(records)
            ax.bar(edges[0] - 0.4 + (i + 0.5) * width, dead, width=width, color=f"C{i}", alpha=0.6)
    ax.axvline(np.log10(DENSE_FREQUENCY), color="k", linestyle="--", linewidth=1)
    ax.text(np.log10(DENSE_FREQUENCY), ax.get_ylim()[1] * 0.9, " dense", fontsize=8)
    ax.text(edges[0] - 0.25, ax.get_ylim()[1] * 0.9, "dead", fontsize=8, ha="center")
    _label(ax, "log10 firing frequency (share of tokens)", "features", "Feature firing frequency")
    return fig


def _l0(plt: Any, records: dict[str, dict[str, Any]]) -> Any:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, r in records.items():
        counts = np.asarray(r["distributions"]["l0_counts"], dtype=float)
        share = counts / max(counts.sum(), 1)
        mean = float((np.arange(len(counts)) * share).sum())
        ax.step(np.arange(len(counts)), share, where="mid", label=f"{name} (mean {mean:.1f})")
    _label(ax, "active features per token (L0)", "share of tokens", "L0 per token")
    return fig


def _magnitudes(plt: Any, records: dict[str, dict[str, Any]]) -> Any:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, r in records.items():
        d = r["distributions"]
        edges = np.asarray(d["magnitude_edges"])
        counts = np.asarray(d["magnitude_counts"], dtype=float)
        ax.step(
            10 ** ((edges[:-1] + edges[1:]) / 2),
            counts / max(counts.sum(), 1),
            where="mid",
            label=f"{name} ({int(counts.sum()):,} non-zero)",
        )
    ax.set_xscale("log")
    _label(ax, "non-zero activation magnitude", "share of activations", "Activation magnitudes")
    return fig


def _heatmap(plt: Any, records: dict[str, dict[str, Any]]) -> Any:
    fig, axes = plt.subplots(len(records), 1, figsize=(9, 3.2 * len(records)), squeeze=False)
    for ax, (name, r) in zip(axes[:, 0], records.items(), strict=True):
        h = r["distributions"]["heatmap"]
        if not h["tokens"] or not h["features"]:
            ax.set_axis_off()
            ax.set_title(f"{name}: no tokens to show", fontsize=9)
            continue
        values = np.asarray(h["values"], dtype=float).reshape(len(h["tokens"]), -1).T
        image = ax.imshow(values, aspect="auto", cmap="magma", interpolation="nearest")
        ax.set_yticks(range(len(h["features"])), [str(f) for f in h["features"]], fontsize=6)
        labels = [t.replace("$", r"\$") for t in h["tokens"]]  # not mathtext
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_ylabel("feature (most frequent first)")
        ax.set_title(f"{name}: top features on the first tokens", fontsize=9)
        fig.colorbar(image, ax=ax, label="activation")
    return fig
