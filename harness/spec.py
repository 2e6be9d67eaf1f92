"""Experiment specs: frozen, validated, JSON-serialisable pure data (DESIGN §4).

An experiment file exposes ``def spec() -> Experiment``; :func:`harness.loading.load_spec` imports
it once and everything downstream works from the JSON form of the returned object.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "RUNNABLE_STUDIES",
    "Ablation",
    "Attribution",
    "ContrastiveSearch",
    "Experiment",
    "FeatureByContrast",
    "FeatureByIndex",
    "FeatureByMatch",
    "FeatureRef",
    "GenerationSettings",
    "HubDataset",
    "JudgeSettings",
    "LocalSAE",
    "LogitDiff",
    "ModelRef",
    "PretrainedModel",
    "PretrainedSAE",
    "PromptFile",
    "SAEQualityEval",
    "SAERef",
    "SaturationClamp",
    "Specificity",
    "Study",
    "TargetLogProb",
    "Tolerance",
    "ToyModel",
    "ToySAE",
    "sae_label",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- models and SAEs


Device = Literal["auto", "cpu", "cuda", "mps"]


class ToyModel(_Frozen):
    """The embedded toy TransformerLens model (DESIGN §9)."""

    kind: Literal["toy"] = "toy"
    device: Device = Field(default="auto", description="Runtime-only: not part of the spec hash.")


class PretrainedModel(_Frozen):
    """A model TransformerLens can load by name, e.g. ``gpt2`` (needs the hub or a local cache)."""

    kind: Literal["pretrained"] = "pretrained"
    name: str = Field(min_length=1)
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    device: Device = Field(default="auto", description="Runtime-only: not part of the spec hash.")


ModelRef = Annotated[ToyModel | PretrainedModel, Field(discriminator="kind")]


class _SAEBase(_Frozen):
    hook: str | None = Field(
        default=None, description="Hook point override; default: the one in the SAE's config."
    )


class ToySAE(_SAEBase):
    """A toy SAE checkpoint shipped with the package, by name (e.g. ``relu-256``)."""

    kind: Literal["toy"] = "toy"
    name: str = "relu-256"


class PretrainedSAE(_SAEBase):
    """A SAELens release and SAE id, e.g. ``gpt2-small-res-jb`` / ``blocks.3.hook_resid_pre``."""

    kind: Literal["release"] = "release"
    release: str = Field(min_length=1)
    sae_id: str = Field(min_length=1)


class LocalSAE(_SAEBase):
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
    rank: int = Field(default=0, ge=0, le=99, description="0: the top candidate, 1: the next…")


class FeatureByMatch(_FeatureBase):
    """The feature whose decoder direction is closest (cosine) to a feature of another SAE."""

    kind: Literal["match"] = "match"
    reference_sae: str = Field(min_length=1, description="Label of another SAE in this spec.")
    reference_index: int = Field(ge=0)


FeatureRef = Annotated[
    FeatureByIndex | FeatureByContrast | FeatureByMatch, Field(discriminator="kind")
]


# ---------------------------------------------------------------- prompts and positions


class PromptFile(_Frozen):
    """Prompts from a file next to the spec: ``.txt`` (one per line) or ``.jsonl`` (``prompt``).

    :func:`harness.loading.load_spec` replaces it by the prompts it holds, so the stored spec is
    self-contained and its hash changes when the file does.
    """

    kind: Literal["file"] = "file"
    path: str = Field(min_length=1)


PromptSet = tuple[str, ...] | PromptFile


class HubDataset(_Frozen):
    """Documents from a Hugging Face dataset, streamed (needs the hub), e.g.
    ``HubDataset(path="NeelNanda/pile-10k")``: the first ``n_documents`` of ``split``."""

    kind: Literal["hub"] = "hub"
    path: str = Field(min_length=1)
    split: str = Field(default="train", min_length=1)
    text_field: str = Field(default="text", min_length=1)
    n_documents: int = Field(default=2000, ge=1, le=1_000_000)


Corpus = tuple[str, ...] | PromptFile | HubDataset
Positions = Literal["all", "prompt", "generated", "last"] | tuple[int, ...]


def prompt_list(prompts: PromptSet) -> tuple[str, ...]:
    """The prompts of a resolved prompt set (files are read by ``load_spec``)."""
    if isinstance(prompts, PromptFile):
        raise ValueError(f"prompt file {prompts.path!r} was not resolved; use load_spec")
    return prompts


def _check_prompts(prompts: PromptSet) -> PromptSet:
    if isinstance(prompts, PromptFile):
        return prompts
    if not prompts:
        raise ValueError("the prompt set is empty")
    for i, prompt in enumerate(prompts):
        if not prompt.strip():
            raise ValueError(f"prompt {i} is blank")
    return prompts


def _check_positions(positions: Positions) -> Positions:
    if isinstance(positions, tuple):
        if not positions:
            raise ValueError("explicit positions must list at least one index")
        if any(p < 0 for p in positions):
            raise ValueError(f"positions {list(positions)} must be >= 0 (0 is the first token)")
    return positions


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} {value} must be finite")
    return value


class _Study(_Frozen):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")


# ---------------------------------------------------------------- studies


class SaturationClamp(_Study):
    """Clamp one feature to a sweep of levels while generating; baselines are unclamped rows."""

    kind: Literal["saturation"] = "saturation"
    feature: FeatureRef
    levels: tuple[float, ...] = Field(min_length=1)
    level_unit: Literal["max_activation", "absolute"] = "max_activation"
    prompts: PromptSet
    intervention: Literal["clamp", "add"] = Field(
        default="clamp",
        description="clamp: set the feature to the level; add: add level × W_dec[i] (steering).",
    )
    positions: Positions = "all"
    conditional: bool = False
    keep_error_term: bool = True
    neutral_prompts: PromptSet | None = Field(
        default=None,
        description="Prompts the clamp should leave alone: every level also runs on them, and "
        "their drift is reported next to the target prompts' (clamp specificity).",
    )
    fluency_threshold: float = Field(
        default=1.0,
        ge=0,
        description="Recommended level: the best concept score whose mean judged fluency (0–2) "
        "stays at or above this; chosen on half of the prompts, reported on the other half.",
    )

    @field_validator("positions")
    @classmethod
    def _position_set(cls, v: Positions) -> Positions:
        return _check_positions(v)

    @field_validator("neutral_prompts")
    @classmethod
    def _neutral_set(cls, v: PromptSet | None) -> PromptSet | None:
        return v if v is None else _check_prompts(v)

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
    def _prompt_set(cls, v: PromptSet) -> PromptSet:
        return _check_prompts(v)


class LogitDiff(_Frozen):
    """Metric: logit(positive) − logit(negative) at the last position."""

    kind: Literal["logit_diff"] = "logit_diff"
    positive: str = Field(min_length=1)
    negative: str = Field(min_length=1)


class TargetLogProb(_Frozen):
    """Metric: log-probability of a target continuation."""

    kind: Literal["target_logprob"] = "target_logprob"
    continuation: str = Field(min_length=1)


class Ablation(_Study):
    """Zero (defence) or amplify (attack) features at chosen positions.

    Per prompt: the next-token table (top token with and without the intervention, changed or
    not, probability shift), logit shifts of named tokens and of an optional metric, KL of the
    next-token distribution; then judged continuations and topic drift. ``control_prompts`` get
    the same tables: the side effects.
    """

    kind: Literal["ablation"] = "ablation"
    features: tuple[FeatureRef, ...] = Field(min_length=1)
    mode: Literal["zero", "amplify"] = "zero"
    amplify_value: float = Field(
        default=20.0, gt=0, description="amplify: the value the features are clamped to."
    )
    positions: Positions = "all"
    prompts: PromptSet
    control_prompts: PromptSet | None = None
    tokens: tuple[str, ...] = Field(default=(), description="Tokens whose logit shifts to report.")
    metric: Annotated[LogitDiff | TargetLogProb, Field(discriminator="kind")] | None = Field(
        default=None, description="A metric whose shift is reported with a CI and a paired test."
    )
    generate: bool = Field(
        default=True, description="Also generate, judge and measure drift of continuations."
    )
    keep_error_term: bool = True

    @field_validator("prompts", "control_prompts")
    @classmethod
    def _prompt_set(cls, v: PromptSet | None) -> PromptSet | None:
        return v if v is None else _check_prompts(v)

    @field_validator("positions")
    @classmethod
    def _position_set(cls, v: Positions) -> Positions:
        return _check_positions(v)

    @field_validator("amplify_value")
    @classmethod
    def _finite_amplify(cls, v: float) -> float:
        return _finite(v, "amplify_value")


class Specificity(_Study):
    """Judge contexts where a feature fires, per activation bin, on the 0–3 specificity rubric."""

    kind: Literal["specificity"] = "specificity"
    feature: FeatureRef
    bins: tuple[float, ...] = Field(
        default=(0.0, 0.25, 0.5, 0.75),
        min_length=1,
        description="Lower edges of activation bins as fractions of max activation.",
    )
    n_per_bin: int = Field(default=20, ge=1, le=1000)
    include_inactive: bool = True
    context_window: int = Field(default=8, ge=1, le=256)
    description: str | None = Field(
        default=None,
        description="What the feature is said to mean; None: the feature's label, else an "
        "auto-interpretation from its max-activating examples.",
    )
    corpus: PromptSet | None = Field(
        default=None, description="Documents to sample contexts from; None: the toy corpus."
    )

    @field_validator("corpus")
    @classmethod
    def _corpus_set(cls, v: PromptSet | None) -> PromptSet | None:
        return v if v is None else _check_prompts(v)

    @field_validator("bins")
    @classmethod
    def _increasing_fractions(cls, bins: tuple[float, ...]) -> tuple[float, ...]:
        for b in bins:
            if not math.isfinite(b) or not 0 <= b < 1:
                raise ValueError(f"bin edge {b} must be a fraction in [0, 1)")
        if list(bins) != sorted(set(bins)):
            raise ValueError(f"bin edges {list(bins)} must be strictly increasing")
        return bins


class Attribution(_Study):
    """Attribution (grad × (0 − act)) per feature vs true ablations of the top-k features."""

    kind: Literal["attribution"] = "attribution"
    prompts: PromptSet
    metric: Annotated[LogitDiff | TargetLogProb, Field(discriminator="kind")]
    top_k: int = Field(default=20, ge=1, le=1000)

    @field_validator("prompts")
    @classmethod
    def _prompt_set(cls, v: PromptSet) -> PromptSet:
        return _check_prompts(v)


class ContrastiveSearch(_Study):
    """Rank features by mean activation difference between positive and negative prompts."""

    kind: Literal["contrast"] = "contrast"
    positive: PromptSet
    negative: PromptSet
    position: Literal["last", "max"] = "last"
    top_k: int = Field(default=10, ge=1, le=1000)
    corpus: PromptSet | None = Field(
        default=None, description="Documents for max-activating examples; None: the toy corpus."
    )

    @field_validator("corpus")
    @classmethod
    def _corpus_set(cls, v: PromptSet | None) -> PromptSet | None:
        return v if v is None else _check_prompts(v)

    @field_validator("positive", "negative")
    @classmethod
    def _prompt_set(cls, v: PromptSet) -> PromptSet:
        return _check_prompts(v)


Study = Annotated[
    SaturationClamp | Ablation | Specificity | Attribution | ContrastiveSearch,
    Field(discriminator="kind"),
]
RUNNABLE_STUDIES = ("saturation", "ablation", "contrast", "specificity", "attribution")


# ---------------------------------------------------------------- run settings


class GenerationSettings(_Frozen):
    """How continuations are decoded."""

    max_new_tokens: int = Field(default=24, gt=0, le=4096)
    greedy: bool = True
    temperature: float = Field(default=1.0, gt=0, le=10)


class JudgeSettings(_Frozen):
    """Which judge scores continuations, with which rubric.

    ``auto`` uses the Anthropic judge when ``ANTHROPIC_API_KEY`` is set and the offline keyword
    judge otherwise; reports, MLflow tags and the CLI always say which one scored.
    """

    kind: Literal["auto", "offline", "anthropic"] = "auto"
    model: str = Field(default="claude-sonnet-4-5-20250929", min_length=1)
    rubric: str = Field(default="concept_presence", min_length=1)
    extra_rubrics: tuple[str, ...] = Field(
        default=("fluency", "instruction"),
        description="Also judged on every continuation: concept / instruction / fluency, the "
        "shape steering benchmarks report, with their harmonic mean.",
    )
    max_unscored_fraction: float = Field(
        default=0.2, ge=0, le=1, description="More unscored judgements than this fail the run."
    )

    def effective_kind(self) -> Literal["offline", "anthropic"]:
        """The judge ``auto`` resolves to here and now."""
        if self.kind != "auto":
            return self.kind
        return "anthropic" if os.environ.get("ANTHROPIC_API_KEY") else "offline"


class Tolerance(_Frozen):
    """How much a headline metric may worsen against the accepted baseline before
    ``harness regress`` fails (definitions: docs/metrics.md, "Regression gate")."""

    metric: Literal[
        "explained_variance",
        "ce_loss_score",
        "kl_div_score",
        "mse",
        "l0",
        "concept_score",
        "fluency_score",
        "instruction_score",
        "drift",
        "concept_gain",
        "nll",
        "kl_mean",
        "top1_changed",
        "metric_shift",
    ]
    max_change: float = Field(ge=0, description="Allowed worsening of the mean (metric units).")
    higher_is_better: bool = Field(
        default=True,
        description="Direction of improvement; when not given, False for nll and mse (lower is "
        "better), True otherwise.",
    )
    study: str | None = Field(default=None, description="None: every study that has the metric.")
    condition: str | None = Field(default=None, description="None: every non-baseline condition.")

    @model_validator(mode="before")
    @classmethod
    def _direction(cls, data: Any) -> Any:
        if isinstance(data, dict) and "higher_is_better" not in data:
            lower = data.get("metric") in ("nll", "mse")
            data = {**data, "higher_is_better": not lower}
        return data


DEFAULT_TOLERANCES = (
    Tolerance(metric="concept_score", max_change=0.5),
    Tolerance(metric="fluency_score", max_change=0.5),
    Tolerance(metric="explained_variance", max_change=0.05),
    Tolerance(metric="ce_loss_score", max_change=0.05),
)


class SAEQualityEval(_Frozen):
    """SAE quality measured once per SAE at the start of a run, with ``sae_lens.evals``'
    definitions (explained variance, L0, dead fraction, CE-loss score, KL score) on a fixed sample
    of token sequences cut from ``Experiment.stats_corpus`` the way SAELens' activation store
    cuts them (definitions: docs/metrics.md, "SAE quality")."""

    n_sequences: int = Field(default=64, ge=2, le=4096, description="Token sequences evaluated.")
    context_size: int | None = Field(
        default=None,
        ge=2,
        description="Tokens per sequence; None: the SAE's training context size (at most the "
        "model's n_ctx).",
    )
    batch_size: int = Field(default=8, ge=1, description="Sequences per forward pass.")


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
    regression: tuple[Tolerance, ...] = Field(
        default=DEFAULT_TOLERANCES,
        description="Headline metrics `harness regress` gates on, with their tolerances.",
    )
    stats_corpus: Corpus | None = Field(
        default=None,
        description="Documents for feature statistics (max activation, firing frequency, "
        "quantiles), which clamp levels in × max activation need; None: the toy corpus "
        "(toy model only).",
    )
    sae_quality: SAEQualityEval | None = Field(
        default_factory=SAEQualityEval,
        description="SAE quality (sae_lens.evals metrics) on token sequences cut from "
        "stats_corpus (the toy corpus for the toy model; a real model without stats_corpus is "
        "not measured, and the report says so), stored with the run; None: not measured.",
    )

    @field_validator("stats_corpus")
    @classmethod
    def _stats_corpus(cls, v: Corpus | None) -> Corpus | None:
        return v if v is None or isinstance(v, HubDataset) else _check_prompts(v)

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

    def with_saes(self, saes: tuple[SAERef, ...]) -> Experiment:
        """The same experiment over other SAE checkpoints (validated again)."""
        return Experiment.model_validate({**self.model_dump(), "saes": saes})

    def canonical_json(self) -> str:
        """The spec as JSON with sorted keys: what is stored with a run."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """SHA-256 of the spec without the fields that change no result (model device, regression
        tolerances); stable under key order."""
        data = self.model_dump(mode="json", exclude={"model": {"device"}, "regression": True})
        return hashlib.sha256(
            json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
