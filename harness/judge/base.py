"""What every judge takes and returns. A failed judgement is unscored, never a 0 (Rule 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from harness.judge.rubric import Rubric

__all__ = [
    "BUILT_ON",
    "NATURAL_TEXT_MEASURED",
    "OFFLINE_JUDGES",
    "Judge",
    "JudgeRequest",
    "Judgement",
    "built_on",
    "natural_text_note",
    "same_rules",
]


class JudgeRequest(BaseModel):
    """One item to judge: the text, the concept it is judged against, and its keywords."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    concept: str
    keywords: tuple[str, ...] = ()
    prompt: str = ""  # the generation prompt, for the instruction-relevance rubric


class Judgement(BaseModel):
    """A verdict: ``score`` is an int on the rubric's scale, or None with ``unscored_reason``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    score: int | None
    unscored_reason: str | None = None
    judge: str
    rubric: str
    prompt: str
    raw_reply: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    api_calls: int = 0
    cached: bool = False

    @model_validator(mode="after")
    def _score_xor_reason(self) -> Judgement:
        if (self.score is None) == (self.unscored_reason is None):
            raise ValueError("a judgement has either a score or an unscored_reason, not both")
        return self

    @property
    def scored(self) -> bool:
        """True when the judgement produced a score."""
        return self.score is not None


class Judge(Protocol):
    """Scores texts on a rubric; ``name`` says which judge scored (reports, MLflow tags)."""

    name: str
    rubric: Rubric

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        """Judge every request; the result list is in request order."""
        ...


OFFLINE_JUDGES = ("offline-semantic-v1", "offline-keyword-v1")
# A judge built on another: its score is never below the other's (the semantic judge is the
# higher of the keyword judge's level and a meaning level), so the pair's agreement is
# consistency, not the agreement of independent raters.
BUILT_ON = {"offline-semantic-v1": "offline-keyword-v1"}


def built_on(judge: str) -> str | None:
    """The judge ``judge`` is built on, if any (:data:`BUILT_ON`)."""
    return BUILT_ON.get(judge)


def same_rules(a: str, b: str, rubric: str) -> bool:
    """Whether judges ``a`` and ``b`` score ``rubric`` (a name) by the same rules, so their
    scores of it may be compared: the same judge, or the two offline judges on every rubric but
    concept presence (only there does the semantic judge read meaning)."""
    if a == b:
        return True
    return a in OFFLINE_JUDGES and b in OFFLINE_JUDGES and rubric != "concept_presence"


# What judge/natural_eval.evaluate() measured for the semantic offline judge (the tests re-measure
# it): recall at >= 2 and the near misses' false-positive rate at >= 2.
NATURAL_TEXT_MEASURED = {"offline-semantic-v1": (0.30, 0.75)}


def natural_text_note(judge: str) -> str:
    """What a verdict resting on an offline judge's concept scores of natural text says."""
    recall, fp = NATURAL_TEXT_MEASURED.get(judge, (float("nan"), float("nan")))
    return (
        f"offline judge not validated on natural text (recall {recall:.2f}, near misses "
        f"{fp:.2f} at >= 2; docs/judges.md)"
    )
