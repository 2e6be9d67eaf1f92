"""The pieces a spec is made of: model, SAE and feature references, prompt sets, positions,
metrics, and the base every study kind's spec model extends (pure data; DESIGN §4).

Study spec models live in their study kind's module (``harness.studies.<kind>``); the
:class:`~harness.spec.experiment.Experiment` collects them through the study registry.
"""

from __future__ import annotations

import math
import os
import sys
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "CheckedPositions",
    "Corpus",
    "Device",
    "FeatureByContrast",
    "FeatureByIndex",
    "FeatureByMatch",
    "FeatureRef",
    "Frozen",
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
    "Processing",
    "PromptFile",
    "PromptSet",
    "Prompts",
    "SAERef",
    "StudySpec",
    "TargetLogProb",
    "ToyModel",
    "ToySAE",
    "check_positions",
    "check_prompts",
    "finite",
    "prompt_list",
    "sae_label",
]


# While a spec file's spec() runs (harness.spec.sources.recording), every spec object built by
# a call records where: (object, file, line). None otherwise (no cost).
SITES: list[tuple[BaseModel, str, int]] | None = None


class Frozen(BaseModel):
    """Frozen pydantic model that refuses unknown fields: the base of every spec model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        super().__init__(**data)
        if SITES is not None:  # where the spec set it, for errors that name file:line
            frame = sys._getframe(1)
            SITES.append((self, frame.f_code.co_filename, frame.f_lineno))


# ---------------------------------------------------------------- models and SAEs


Device = Literal["auto", "cpu", "cuda", "mps"]


class ToyModel(Frozen):
    """The embedded toy TransformerLens model (DESIGN §9)."""

    kind: Literal["toy"] = "toy"
    device: Device = Field(default="auto", description="Runtime-only: not part of the spec hash.")


Processing = Literal["as_trained", "no_processing", "default"] | dict[str, bool]


class PretrainedModel(Frozen):
    """A model TransformerLens can load by name, e.g. ``gpt2`` (needs the hub or a local cache),
    or from a local folder in Hugging Face format (``path=``; no hub access at all).

    ``processing`` says how TransformerLens processes the weights: ``as_trained`` (the default)
    loads the model the way its SAEs were trained, from their SAELens metadata
    (``from_pretrained_no_processing`` plus the SAE's ``model_from_pretrained_kwargs``, as SAELens'
    own ``load_model`` does); ``no_processing`` and ``default`` force
    ``from_pretrained_no_processing`` or ``from_pretrained``; a dict gives the keyword arguments
    (e.g. ``{"center_writing_weights": True}``) on top of no processing. Recorded in provenance.
    """

    kind: Literal["pretrained"] = "pretrained"
    name: str = Field(min_length=1)
    path: str | None = Field(
        default=None,
        min_length=1,
        description="A local folder with config.json, weights and tokenizer files (Hugging Face "
        "format); ``name`` says which TransformerLens architecture it is. Fingerprinted in the "
        "run id.",
    )
    processing: Processing = "as_trained"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    device: Device = Field(default="auto", description="Runtime-only: not part of the spec hash.")


ModelRef = Annotated[ToyModel | PretrainedModel, Field(discriminator="kind")]


class _SAEBase(Frozen):
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


class _FeatureBase(Frozen):
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


class PromptFile(Frozen):
    """Prompts from a file next to the spec: ``.txt`` (one per line) or ``.jsonl`` (``prompt``).

    :func:`harness.spec.loading.load_spec` replaces it by the prompts it holds, so the stored
    spec is self-contained and its hash changes when the file does.
    """

    kind: Literal["file"] = "file"
    path: str = Field(min_length=1)
    # a file outside the spec's folder and the working directory is read only when asked
    allow_outside: bool = False


PromptSet = tuple[str, ...] | PromptFile


class HubDataset(Frozen):
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


def _is_control(char: str) -> bool:
    """A control character other than tab, newline and carriage return (NUL, ESC, DEL, C1…):
    never text, and a NUL breaks the tokenizers and files downstream."""
    return unicodedata.category(char) == "Cc" and char not in "\t\n\r"


def check_prompts(prompts: PromptSet) -> PromptSet:
    """A prompt set's validation (non-empty, no blank or repeated prompt); files are checked
    when they are read."""
    if isinstance(prompts, PromptFile):
        return prompts
    if not prompts:
        raise ValueError("the prompt set is empty")
    first: dict[str, int] = {}
    for i, prompt in enumerate(prompts):
        if not prompt.strip():
            raise ValueError(f"prompt {i} is blank")
        bad = next((c for c in prompt if _is_control(c)), None)
        if bad is not None:
            raise ValueError(
                f"prompt {i} holds the control character U+{ord(bad):04X} at character "
                f"{prompt.index(bad)} ({prompt[:40]!r}); prompts are text (tab and newline "
                "allowed)"
            )
        if prompt in first:
            raise ValueError(
                f"prompt {i} repeats prompt {first[prompt]} ({prompt[:40]!r}); each prompt of a "
                "set is one item, and a repeat would count twice"
            )
        first[prompt] = i
    return prompts


def check_positions(positions: Positions) -> Positions:
    """Explicit positions: a non-empty tuple of indices >= 0."""
    if isinstance(positions, tuple):
        if not positions:
            raise ValueError("explicit positions must list at least one index")
        if any(p < 0 for p in positions):
            raise ValueError(f"positions {list(positions)} must be >= 0 (0 is the first token)")
    return positions


def finite(value: float, what: str) -> float:
    """``value`` when finite, else a ValueError naming ``what``."""
    if not math.isfinite(value):
        raise ValueError(f"{what} {value} must be finite")
    return value


Prompts = Annotated[PromptSet, AfterValidator(check_prompts)]  # a prompt set, checked
CheckedPositions = Annotated[Positions, AfterValidator(check_positions)]


class StudySpec(Frozen):
    """The base of every study kind's spec model: a name, and the ``kind`` tag the registry
    dispatches on (each kind narrows it to a ``Literal``)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str


class LogitDiff(Frozen):
    """Metric: logit(positive) − logit(negative) at the last position."""

    kind: Literal["logit_diff"] = "logit_diff"
    positive: str = Field(min_length=1)
    negative: str = Field(min_length=1)


class TargetLogProb(Frozen):
    """Metric: log-probability of a target continuation."""

    kind: Literal["target_logprob"] = "target_logprob"
    continuation: str = Field(min_length=1)


Metric = Annotated[LogitDiff | TargetLogProb, Field(discriminator="kind")]


class GenerationSettings(Frozen):
    """How continuations are decoded."""

    max_new_tokens: int = Field(default=24, gt=0, le=4096)
    greedy: bool = True
    temperature: float = Field(default=1.0, gt=0, le=10)


class JudgeSettings(Frozen):
    """Which judge scores continuations, with which rubric.

    ``auto`` uses the Anthropic judge when ``ANTHROPIC_API_KEY`` is set and the offline judge
    otherwise; reports, MLflow tags and the CLI always say which one scored. ``offline`` is the
    offline judge that reads keywords and meaning (``offline-semantic-v1``);
    ``offline-keyword`` the one that counts keywords only (``offline-keyword-v1``).
    """

    kind: Literal["auto", "offline", "offline-keyword", "anthropic"] = "auto"
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
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Anthropic judge: requests in flight at once (None: 32; --judge-concurrency "
        "overrides). Changes no result: not part of the spec hash.",
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Anthropic judge: seconds per request before it is retried (None: 60).",
    )
    max_retries: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="Anthropic judge: retries of a request on 429/529/5xx/timeouts (None: 6).",
    )
    max_cost_usd: float | None = Field(
        default=None,
        ge=0,
        description="Paid judge: the most one invocation may spend, in USD (None: $10; "
        "--max-cost overrides). A plan estimated above it is refused before compute, and the "
        "run stops cleanly when its spend reaches it. Changes no result: not in the spec hash.",
    )
    min_kappa_vs_humans: float = Field(
        default=0.6,
        ge=-1,
        le=1,
        description="Where human labels exist (`harness label import`), a judge whose Cohen's κ "
        "with any annotator on a rubric is below this is 'not validated' there, and every "
        "verdict resting on it says so instead of better/worse (0.6: 'substantial' agreement "
        "on Landis & Koch's scale). Changes no result: not in the spec hash.",
    )

    def effective_kind(self) -> Literal["offline", "offline-keyword", "anthropic"]:
        """The judge ``auto`` resolves to here and now."""
        if self.kind != "auto":
            return self.kind
        return "anthropic" if os.environ.get("ANTHROPIC_API_KEY") else "offline"

    def is_offline(self) -> bool:
        """Whether an offline judge (either) scores: no API key needed, no cost."""
        return self.effective_kind() != "anthropic"
