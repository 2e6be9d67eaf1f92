"""harness: run SAE feature-intervention experiments, judge them, and track the results.

The public names for writing experiment specs are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.spec import (
    Ablation,
    Experiment,
    FeatureByContrast,
    FeatureByIndex,
    GenerationSettings,
    HubDataset,
    JudgeSettings,
    LocalSAE,
    LogitDiff,
    PretrainedModel,
    PretrainedSAE,
    PromptFile,
    SaturationClamp,
    ToyModel,
    ToySAE,
)

if TYPE_CHECKING:
    from harness.views.notebook import LoadedRun


def load_run(run: str | Path = "latest", runs_root: str | Path | None = None) -> LoadedRun:
    """A stored run as pandas DataFrames (see :class:`harness.views.notebook.LoadedRun`)."""
    from harness.views.notebook import load_run as _load

    return _load(run, runs_root)


__all__ = [
    "Ablation",
    "Experiment",
    "FeatureByContrast",
    "FeatureByIndex",
    "GenerationSettings",
    "HubDataset",
    "JudgeSettings",
    "LocalSAE",
    "LogitDiff",
    "PretrainedModel",
    "PretrainedSAE",
    "PromptFile",
    "SaturationClamp",
    "ToyModel",
    "ToySAE",
    "load_run",
]
