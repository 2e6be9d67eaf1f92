"""Typed records: every line of ``records.jsonl`` is one of these frozen models (``kind`` tag).

The store checks each record against its kind's model when it is appended, so a producer can
never write a record a reader would misread (a missing field, a string where a number belongs,
a judgement with both a score and an unscored reason). The file keeps the plain JSON object;
readers get dicts, and :func:`parse_record` gives the typed model where one is wanted.

Record kinds that belong to one study kind are declared by it (``StudyKind.records``) and
registered with it; the ones every run writes (judgements, SAE quality, judge batches) are here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import StoreError
from harness.judge.base import Judgement

__all__ = [
    "Candidates",
    "CellRecord",
    "ContextRecord",
    "Description",
    "FeatureRecord",
    "Generation",
    "ItemRecord",
    "JudgeBatch",
    "JudgeBatchDone",
    "JudgementRecord",
    "Measure",
    "NextToken",
    "QualityRecord",
    "Record",
    "TopFeatures",
    "parse_record",
    "record_kinds",
    "register_record",
]


class Record(BaseModel):
    """The base: a ``kind`` and a ``key`` unique within the kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    key: str


class ItemRecord(Record):
    """A record about one item of one study on one SAE (a prompt, a context)."""

    sae: str
    study: str
    condition: str
    prompt_index: int


class Generation(ItemRecord):
    """One continuation, with the clamp it was generated under."""

    kind: Literal["generation"] = "generation"
    prompt_set: str = "target"
    level: float | None  # the level as the spec gives it; None: the unclamped baseline
    prompt: str
    clamp_value: float | None = None  # the value the feature(s) were set to
    feature: int | None = None
    features: list[int] | None = None
    continuation: str
    tokens: list[int]


class Measure(ItemRecord):
    """Perplexity and topic drift of one generation (``of``)."""

    kind: Literal["measure"] = "measure"
    of: str
    prompt_set: str = "target"
    embedder: str
    nll: float | None
    n_tokens: int
    drift: float | None
    concept_sim: float | None
    concept_gain: float | None


class NextToken(ItemRecord):
    """The next-token effect of one intervention on one prompt."""

    kind: Literal["next_token"] = "next_token"
    prompt_set: str = "target"
    prompt: str
    base_top: str
    base_top_p: float
    iv_top: str
    iv_top_p: float
    changed: bool
    p_shift: float
    kl_last: float
    kl_mean: float
    logit_shift: dict[str, float]
    metric_base: float | None = None
    metric_iv: float | None = None


class JudgementRecord(Judgement, ItemRecord):
    """One judging attempt of one item (``of``) on one rubric: the :class:`Judgement` (a score,
    or unscored with the reason, never both) with the item it judged."""

    kind: Literal["judgement"] = "judgement"
    of: str
    attempt: int = 0


class TopFeatures(Record):
    """The most active features on one prompt, without intervention."""

    kind: Literal["top_features"] = "top_features"
    sae: str
    study: str
    prompt_set: str
    prompt_index: int
    prompt: str
    features: list[dict[str, Any]]


class FeatureRecord(Record):
    """Which feature(s) a study intervenes on, how they were found, and their statistics."""

    kind: Literal["feature"] = "feature"
    sae: str
    study: str
    feature: int
    features: list[int]
    label: str | None
    method: str
    max_activation: float | None
    max_activation_source: str | None
    frequency: float | None
    quantiles: dict[str, float] | None
    stats_tokens: int | None
    candidates: list[dict[str, Any]]


class ContextRecord(ItemRecord):
    """A corpus context sampled for a specificity study."""

    kind: Literal["context"] = "context"
    feature: int
    activation: float
    max_activation: float
    text: str
    description: str


class Description(Record):
    """An auto-interpretation of a feature, made once per run."""

    kind: Literal["description"] = "description"
    sae: str
    study: str
    text: str
    source: str
    examples: list[str]


class Candidates(Record):
    """A contrastive search's ranked candidates."""

    kind: Literal["candidates"] = "candidates"
    sae: str
    study: str
    candidates: list[dict[str, Any]]


class QualityRecord(Record):
    """An SAE's quality: per-sequence sums of every ``sae_lens.evals`` metric."""

    kind: Literal["sae_quality"] = "sae_quality"
    sae: str
    corpus: str
    n_sequences: int
    context_size: int
    tokens_sha256: str
    d_sae: int
    alive: int
    per_sequence: dict[str, list[float]]
    # what the quality pictures are drawn from (fire_counts, l0_counts, magnitude_edges,
    # magnitude_counts, heatmap); absent in records stored before the pictures existed
    distributions: dict[str, Any] | None = None


class JudgeBatch(Record):
    """A Message Batch submitted (its id is the key), stored before waiting on it."""

    kind: Literal["judge_batch"] = "judge_batch"
    custom_ids: list[str]


class JudgeBatchDone(Record):
    """A Message Batch whose results are all stored."""

    kind: Literal["judge_batch_done"] = "judge_batch_done"


class CellRecord(Record):
    """A cell (one SAE × study, or one SAE's quality measurement) whose computed records are all
    stored: no executor schedules it again (its judgements are checked every run)."""

    kind: Literal["cell"] = "cell"
    sae: str
    study: str


_MODELS: dict[str, type[Record]] = {}


def register_record(model: type[Record]) -> type[Record]:
    """Add a record kind; refuses a second model for the same kind."""
    kind = model.model_fields["kind"].default
    if not isinstance(kind, str):
        raise ValueError(f"{model.__name__}.kind needs a default (its Literal tag)")
    if kind in _MODELS and _MODELS[kind] is not model:
        raise ValueError(f"record kind {kind!r} is already registered")
    _MODELS[kind] = model
    return model


def record_kinds() -> list[str]:
    """Every registered record kind."""
    return sorted(_MODELS)


def parse_record(data: dict[str, Any]) -> Record:
    """The typed record of a stored dict; StoreError naming the kind and the problem."""
    kind = data.get("kind")
    model = _MODELS.get(str(kind))
    if model is None:
        raise StoreError(f"unknown record kind {kind!r}; registered: {record_kinds()}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise StoreError(
            f"a {kind} record (key {data.get('key')!r}) is malformed: {where}: {err['msg']}"
        ) from None


for _model in (
    Generation,
    Measure,
    NextToken,
    JudgementRecord,
    TopFeatures,
    FeatureRecord,
    ContextRecord,
    Description,
    Candidates,
    QualityRecord,
    JudgeBatch,
    JudgeBatchDone,
    CellRecord,
):
    register_record(_model)
