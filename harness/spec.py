"""Experiment specs: frozen, validated, JSON-serialisable pure data (DESIGN §4).

An experiment file exposes ``def spec() -> Experiment``; :func:`harness.loading.load_spec` imports
it once and everything downstream works from the JSON form of the returned object.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Experiment",
    "FeatureByContrast",
    "FeatureByIndex",
    "FeatureRef",
    "GenerationSettings",
    "JudgeSettings",
    "LocalSAE",
    "ModelRef",
    "PretrainedModel",
    "PretrainedSAE",
    "SAERef",
    "SaturationClamp",
    "Study",
    "ToyModel",
    "ToySAE",
    "sae_label",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- models and SAEs


class ToyModel(_Frozen):
    """The embedded toy TransformerLens model (DESIGN §9)."""

    kind: Literal["toy"] = "toy"


class PretrainedModel(_Frozen):
    """A model TransformerLens can load by name, e.g. ``gpt2`` (needs the hub or a local cache)."""

    kind: Literal["pretrained"] = "pretrained"
    name: str = Field(min_length=1)
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"


ModelRef = Annotated[ToyModel | PretrainedModel, Field(discriminator="kind")]


class ToySAE(_Frozen):
    """A toy SAE checkpoint shipped with the package, by name (e.g. ``relu-256``)."""

    kind: Literal["toy"] = "toy"
    name: str = "relu-256"


class PretrainedSAE(_Frozen):
    """A SAELens release and SAE id, e.g. ``gpt2-small-res-jb`` / ``blocks.3.hook_resid_pre``."""

    kind: Literal["release"] = "release"
    release: str = Field(min_length=1)
    sae_id: str = Field(min_length=1)


class LocalSAE(_Frozen):
    """A directory holding an SAE in SAELens' disk format (``cfg.json`` + weights)."""

    kind: Literal["local"] = "local"
    path: str = Field(min_length=1)
    label: str | None = None


SAERef = Annotated[ToySAE | PretrainedSAE | LocalSAE, Field(discriminator="kind")]


def sae_label(ref: ToySAE | PretrainedSAE | LocalSAE) -> str:
    """A short human name for an SAE reference, used in records, tables and MLflow run names."""
    if isinstance(ref, ToySAE):
        return f"toy/{ref.name}"
    if isinstance(ref, PretrainedSAE):
        return f"{ref.release}/{ref.sae_id}"
    return ref.label or ref.path.rstrip("/").rsplit("/", 1)[-1]


# ---------------------------------------------------------------- features


class _FeatureBase(_Frozen):
    label: str | None = None
    keywords: tuple[str, ...] = Field(
        default=(), description="Concept words the offline judge looks for."
    )


class FeatureByIndex(_FeatureBase):
    """A feature by its index in the SAE (indices differ between checkpoints)."""

    kind: Literal["index"] = "index"
    index: int = Field(ge=0)


class FeatureByContrast(_FeatureBase):
    """A feature found per SAE by contrastive probing: top mean activation difference."""

    kind: Literal["contrast"] = "contrast"
    positive: tuple[str, ...] = Field(min_length=1)
    negative: tuple[str, ...] = Field(min_length=1)
    position: Literal["last", "max"] = "last"


FeatureRef = Annotated[FeatureByIndex | FeatureByContrast, Field(discriminator="kind")]


# ---------------------------------------------------------------- studies


class SaturationClamp(_Frozen):
    """Clamp one feature to a sweep of levels while generating; baselines are unclamped rows."""

    kind: Literal["saturation"] = "saturation"
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    feature: FeatureRef
    levels: tuple[float, ...] = Field(min_length=1)
    level_unit: Literal["max_activation", "absolute"] = "max_activation"
    prompts: tuple[str, ...] = Field(min_length=1)
    keep_error_term: bool = True

    @field_validator("levels")
    @classmethod
    def _finite_non_negative(cls, levels: tuple[float, ...]) -> tuple[float, ...]:
        for level in levels:
            if not math.isfinite(level) or level < 0:
                raise ValueError(f"clamp level {level} must be finite and >= 0")
        if len(set(levels)) != len(levels):
            raise ValueError(f"clamp levels {list(levels)} contain duplicates")
        return levels

    @field_validator("prompts")
    @classmethod
    def _non_blank(cls, prompts: tuple[str, ...]) -> tuple[str, ...]:
        for i, prompt in enumerate(prompts):
            if not prompt.strip():
                raise ValueError(f"prompt {i} is blank")
        return prompts


Study = Annotated[SaturationClamp, Field(discriminator="kind")]


# ---------------------------------------------------------------- run settings


class GenerationSettings(_Frozen):
    """How continuations are decoded."""

    max_new_tokens: int = Field(default=24, gt=0, le=4096)
    greedy: bool = True
    temperature: float = Field(default=1.0, gt=0, le=10)


class JudgeSettings(_Frozen):
    """Which judge scores continuations, with which rubric."""

    kind: Literal["offline"] = "offline"
    rubric: Literal["concept_presence"] = "concept_presence"


class Experiment(_Frozen):
    """One experiment: a model, one or more SAEs, and the studies to run on each SAE."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    model: ModelRef = Field(default_factory=ToyModel)
    saes: tuple[SAERef, ...] = Field(min_length=1)
    studies: tuple[Study, ...] = Field(min_length=1)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    seed: int = 0
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> Experiment:
        names = [s.name for s in self.studies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate study names {dupes}; each study needs its own name")
        labels = [sae_label(s) for s in self.saes]
        dupes = sorted({n for n in labels if labels.count(n) > 1})
        if dupes:
            raise ValueError(f"SAE {dupes} listed more than once")
        return self

    def canonical_json(self) -> str:
        """The spec as JSON with sorted keys: what is stored with a run and hashed."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """SHA-256 of the canonical JSON (stable under field order in the source file)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()
