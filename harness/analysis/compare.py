"""Checkpoint comparison: the same studies over two or more SAE checkpoints, side by side.

Checkpoints are the SAEs of one or more stored runs of the same studies. The first checkpoint is
the reference; every other one gets, per headline metric, the difference from the reference with
a paired bootstrap CI: SAE-quality metrics resample the same token sequences for both (they were
measured on the same tokens), item metrics (judged scores, drift, next-token effects, metric
shifts) pair the same prompts of the same study and condition. Specificity scores come from
contexts sampled per feature, so nothing pairs: their difference gets an independent bootstrap
CI. Features are matched across checkpoints by decoder cosine to the reference's feature.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.compare_rows import NAN_ESTIMATE as _NAN
from harness.analysis.compare_rows import ComparisonRow, excludes_zero
from harness.analysis.quality import (
    HIGHER_IS_BETTER,
    QUALITY_METRICS,
    QUALITY_STUDY,
    paired_quality_difference,
    quality_estimates,
)
from harness.errors import SpecError
from harness.spec.refs import LocalSAE, PretrainedSAE, ToySAE, sae_label
from harness.studies.registry import kind_of
from harness.views.notebook import LoadedRun

__all__ = [
    "Checkpoint",
    "ComparisonRow",
    "FeatureMatch",
    "checkpoints_of",
    "compare",
    "comparison_name",
    "excludes_zero",
    "sae_from_arg",
]


@dataclass(frozen=True)
class Checkpoint:
    """One SAE of one stored run."""

    name: str  # unique in the comparison
    run: LoadedRun
    position: int  # the SAE's position in its run's spec
    sae: str  # its label inside the run

    def ref(self) -> Any:
        return self.run.experiment.saes[self.position]


@dataclass(frozen=True)
class FeatureMatch:
    """Which feature each checkpoint uses in a study, and how it matches the reference's."""

    study: str
    features: list[int | None]  # per checkpoint
    labels: list[str | None]
    cosine_to_reference: list[float | None]  # decoder cosine of each checkpoint's feature
    best_match: list[tuple[int, float] | None] = field(default_factory=list)


def sae_from_arg(text: str) -> ToySAE | LocalSAE | PretrainedSAE:
    """A checkpoint named on the command line: ``toy:NAME``, ``local:PATH`` (or a path to a
    folder holding cfg.json) or ``release:RELEASE:SAE_ID``."""
    kind, _, rest = text.partition(":")
    if kind == "toy" and rest:
        return ToySAE(name=rest)
    if kind == "local" and rest:
        return LocalSAE(path=rest)
    if kind == "release" and ":" in rest:
        release, _, sae_id = rest.partition(":")
        return PretrainedSAE(release=release, sae_id=sae_id)
    if (Path(text) / "cfg.json").is_file():
        return LocalSAE(path=text)
    raise SpecError(f"--sae {text!r}: use toy:NAME, local:PATH or release:RELEASE:SAE_ID")


def checkpoints_of(runs: list[LoadedRun]) -> list[Checkpoint]:
    """Every SAE of every run, named by its label (suffixed with the run id where two runs use
    the same label)."""
    raw = [(run, i, sae_label(ref)) for run in runs for i, ref in enumerate(run.experiment.saes)]
    labels = [label for _, _, label in raw]
    out = []
    for run, i, label in raw:
        name = label if labels.count(label) == 1 else f"{label} ({run.run_id})"
        out.append(Checkpoint(name, run, i, label))
    if len(out) < 2:
        raise SpecError(
            "a comparison needs at least two SAE checkpoints (one run with several SAEs, "
            "several runs, or --sae given twice or more)"
        )
    return out


def comparison_name(checkpoints: list[Checkpoint]) -> str:
    """A stable file name for the comparison of these checkpoints."""
    key = "|".join(f"{c.run.run_id}:{c.sae}" for c in checkpoints)
    return f"compare-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def compare(checkpoints: list[Checkpoint], seed: int = 0) -> list[ComparisonRow]:
    """Every headline metric of every checkpoint, with differences from the first."""
    rng = np.random.default_rng(seed)
    rows = _quality_rows(checkpoints, rng)
    studies: dict[str, Any] = {}
    for c in checkpoints:
        for s in c.run.experiment.studies:
            studies.setdefault(s.name, s)
    for study in studies.values():
        rows += kind_of(study).compare_rows(checkpoints, study, rng)
    return rows


def _quality_rows(checkpoints: list[Checkpoint], rng: np.random.Generator) -> list[ComparisonRow]:
    records = [c.run.quality_records().get(c.position) for c in checkpoints]
    if not any(records):
        return []
    ests = [quality_estimates(r, rng) if r else None for r in records]
    rows = []
    ref = records[0]
    for metric in QUALITY_METRICS:
        diffs = [
            paired_quality_difference(ref, r, metric, rng) if ref and r else _NAN
            for r in records[1:]
        ]
        paired = all(d.n > 0 and not math.isnan(d.ci_low) for d in diffs)
        rows.append(
            ComparisonRow(
                QUALITY_STUDY,
                "all",
                metric,
                [e[metric] if e else _NAN for e in ests],
                diffs,
                "sequences" if paired else "none",
                HIGHER_IS_BETTER[metric],
            )
        )
    return rows
