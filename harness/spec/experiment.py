"""The experiment: a model, SAEs, the studies to run on each, and the run settings (pure data).

``Experiment.studies`` holds the spec models of the registered study kinds
(:mod:`harness.studies.registry`): a dict with a ``kind`` is validated by that kind's model, so a
new kind needs no edit here.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    Field,
    SerializeAsAny,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from harness.spec.refs import (
    Corpus,
    Frozen,
    GenerationSettings,
    HubDataset,
    JudgeSettings,
    ModelRef,
    SAERef,
    StudySpec,
    ToyModel,
    check_prompts,
    sae_label,
)
from harness.studies.registry import regress_metrics, validate_study

__all__ = [
    "DEFAULT_TOLERANCES",
    "Experiment",
    "FitGate",
    "GenerationSettings",
    "JudgeSettings",
    "SAEQualityEval",
    "Study",
    "Tolerance",
]


def _study(value: Any, handler: ValidatorFunctionWrapHandler) -> StudySpec:
    return validate_study(value)


if TYPE_CHECKING:
    Study = StudySpec
else:
    # any registered kind's spec model; dumped with its own fields
    Study = Annotated[SerializeAsAny[StudySpec], WrapValidator(_study)]


class Tolerance(Frozen):
    """How much a headline metric may worsen against the accepted baseline before
    ``harness regress`` fails (definitions: docs/metrics.md, "Regression gate")."""

    metric: str = Field(
        description="An SAE-quality metric (explained_variance, ce_loss_score, kl_div_score, mse, "
        "l0) or an item metric of a study kind in the spec (e.g. concept_score, drift, "
        "metric_shift; the registry lists them)."
    )
    max_change: float = Field(ge=0, description="Allowed worsening of the mean (metric units).")
    higher_is_better: bool = Field(
        default=True,
        description="Direction of improvement; when not given, False for nll and mse (lower is "
        "better), True otherwise.",
    )
    study: str | None = Field(default=None, description="None: every study that has the metric.")
    condition: str | None = Field(default=None, description="None: every non-baseline condition.")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        valid = regress_metrics()
        if metric not in valid:
            raise ValueError(f"unknown metric {metric!r}; valid: {sorted(valid)}")
        return metric

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


class SAEQualityEval(Frozen):
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


class FitGate(Frozen):
    """Before the first intervention on an SAE, its measured fit on the model as loaded (the
    SAE-quality step's explained variance and CE-loss score) must reach these floors, or the
    run refuses to steer it: an SAE that does not reconstruct the activations it reads is not
    reading the activations it was trained on (processing, hook or BOS differ). Thresholds and
    measured figures are printed and reported; the gate changes no result (not hashed)."""

    min_explained_variance: float = Field(
        default=0.0,
        le=1.0,
        description="Floor on explained variance (1 = exact; below 0 the SAE reconstructs worse "
        "than the activations' mean). Raise it towards the SAE's published figure to catch "
        "subtler mismatches.",
    )
    min_ce_loss_score: float = Field(
        default=0.5,
        le=1.0,
        description="Floor on the CE-loss score (1 = splicing the SAE in costs nothing; 0 = as "
        "bad as zero-ablating the hook).",
    )
    min_ablation_gap: float = Field(
        default=0.05,
        ge=0.0,
        description="The CE-loss score is judged only when zero-ablating the hook raises the CE "
        "loss by at least this many nats per token (below that its denominator is noise).",
    )


class Experiment(Frozen):
    """One experiment: a model, one or more SAEs, and the studies to run on each SAE."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    model: ModelRef = Field(default_factory=ToyModel)
    saes: tuple[SAERef, ...] = Field(min_length=1)
    studies: tuple[Study, ...] = Field(min_length=1)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    seed: int = Field(default=0, ge=0, lt=2**32, description="Seeds sampling, bootstraps, splits.")
    unknown_words: Literal["warn", "refuse"] = Field(
        default="warn",
        description="Prompt words the toy tokenizer does not know (they become <unk>): warn, or "
        "refuse the spec. Changes no result: not part of the spec hash.",
    )
    tags: tuple[str, ...] = ()
    limit: int | None = Field(
        default=None,
        ge=1,
        description="Set by `harness run --limit N`: every prompt set was cut to its first N "
        "prompts, a partial run (its own run id; reports say so). None: the whole spec.",
    )
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

    fit_gate: FitGate | None = Field(
        default_factory=FitGate,
        description="Refuse to steer an SAE whose measured fit on the model as loaded is below "
        "these floors (needs SAE quality: the toy corpus or stats_corpus); None: no gate. "
        "Changes no result: not part of the spec hash.",
    )

    @field_validator("stats_corpus")
    @classmethod
    def _stats_corpus(cls, v: Corpus | None) -> Corpus | None:
        return v if v is None or isinstance(v, HubDataset) else check_prompts(v)

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
        tolerances, the unknown-words policy, the judge's kind, concurrency, timeout, retries and
        budget: judgements are stored per judge, so one run holds every judge's), stable under
        key order; ``limit`` counts only when set."""
        data = self.model_dump(
            mode="json",
            exclude={
                "model": {"device"},
                "judge": {
                    "kind",
                    "concurrency",
                    "timeout_s",
                    "max_retries",
                    "max_cost_usd",
                    "min_kappa_vs_humans",
                },
                **({"limit": True} if self.limit is None else {}),
                "regression": True,
                "unknown_words": True,
                "fit_gate": True,
            },
        )
        return hashlib.sha256(
            json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
