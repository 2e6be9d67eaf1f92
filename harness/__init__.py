"""harness: run SAE feature-intervention experiments, judge them, and track the results.

The public names for writing experiment specs are re-exported here.
"""

from __future__ import annotations

from harness.spec import (
    Experiment,
    FeatureByContrast,
    FeatureByIndex,
    GenerationSettings,
    JudgeSettings,
    LocalSAE,
    PretrainedModel,
    PretrainedSAE,
    SaturationClamp,
    ToyModel,
    ToySAE,
)

__all__ = [
    "Experiment",
    "FeatureByContrast",
    "FeatureByIndex",
    "GenerationSettings",
    "JudgeSettings",
    "LocalSAE",
    "PretrainedModel",
    "PretrainedSAE",
    "SaturationClamp",
    "ToyModel",
    "ToySAE",
]
