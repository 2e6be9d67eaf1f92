"""Experiment specs: frozen, validated, JSON-serialisable pure data (DESIGN §4).

An experiment file exposes ``def spec() -> Experiment``; :func:`harness.spec.loading.load_spec`
imports it once and everything downstream works from the JSON form of the returned object.

The pieces live in :mod:`harness.spec.refs` (models, SAEs, features, prompts),
:mod:`harness.spec.experiment` (the experiment and its run settings) and each study kind's module
(its spec model); every public name is importable from here. The experiment and the study models
load on first use, so that a study kind's module can import :mod:`harness.spec.refs` while the
registry that :class:`Experiment` validates against is being built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness.spec.refs import (
    Corpus,
    FeatureByContrast,
    FeatureByIndex,
    FeatureByMatch,
    FeatureRef,
    GenerationSettings,
    HubDataset,
    JudgeSettings,
    LocalSAE,
    LogitDiff,
    Metric,
    ModelRef,
    Positions,
    PretrainedModel,
    PretrainedSAE,
    PromptFile,
    PromptSet,
    SAERef,
    StudySpec,
    TargetLogProb,
    ToyModel,
    ToySAE,
    prompt_list,
    sae_label,
)

if TYPE_CHECKING:
    from harness.spec.experiment import (
        DEFAULT_TOLERANCES,
        Experiment,
        FitGate,
        SAEQualityEval,
        Study,
        Tolerance,
    )
    from harness.studies.ablation import Ablation
    from harness.studies.attribution import Attribution
    from harness.studies.contrast import ContrastiveSearch
    from harness.studies.neighbourhood import FeatureNeighbourhood
    from harness.studies.patching import ActivationPatching
    from harness.studies.saturation import SaturationClamp
    from harness.studies.specificity import Specificity

_LAZY = {
    "DEFAULT_TOLERANCES": "harness.spec.experiment",
    "Experiment": "harness.spec.experiment",
    "FitGate": "harness.spec.experiment",
    "SAEQualityEval": "harness.spec.experiment",
    "Study": "harness.spec.experiment",
    "Tolerance": "harness.spec.experiment",
    "Ablation": "harness.studies.ablation",
    "ActivationPatching": "harness.studies.patching",
    "Attribution": "harness.studies.attribution",
    "ContrastiveSearch": "harness.studies.contrast",
    "FeatureNeighbourhood": "harness.studies.neighbourhood",
    "SaturationClamp": "harness.studies.saturation",
    "Specificity": "harness.studies.specificity",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness.spec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_TOLERANCES",
    "Ablation",
    "ActivationPatching",
    "Attribution",
    "ContrastiveSearch",
    "Corpus",
    "Experiment",
    "FeatureByContrast",
    "FeatureByIndex",
    "FeatureByMatch",
    "FeatureNeighbourhood",
    "FeatureRef",
    "FitGate",
    "GenerationSettings",
    "HubDataset",
    "JudgeSettings",
    "LocalSAE",
    "LogitDiff",
    "Metric",
    "ModelRef",
    "Positions",
    "PretrainedModel",
    "PretrainedSAE",
    "PromptFile",
    "PromptSet",
    "SAEQualityEval",
    "SAERef",
    "SaturationClamp",
    "Specificity",
    "Study",
    "StudySpec",
    "TargetLogProb",
    "Tolerance",
    "ToyModel",
    "ToySAE",
    "prompt_list",
    "sae_label",
]
