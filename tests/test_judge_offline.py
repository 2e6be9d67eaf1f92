"""Rubric parsing and the offline concept-presence judge."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.errors import SpecError
from harness.judge import Judgement, JudgeRequest, OfflineConceptJudge, load_rubric

KW = ("bridge", "fog", "bay", "golden", "gate")


def test_rubric_header_levels_and_hash() -> None:
    rubric = load_rubric("concept_presence")
    assert (rubric.low, rubric.high) == (0, 3)
    assert set(rubric.levels) == {0, 1, 2, 3}
    assert len(rubric.content_hash) == 64 and rubric.ident.startswith("concept_presence@1#")
    prompt = rubric.render(concept="Golden Gate Bridge", text="a {braced} | text")
    assert "Golden Gate Bridge" in prompt and "a {braced} | text" in prompt


def test_unknown_rubric_names_the_valid_ones() -> None:
    with pytest.raises(
        SpecError, match=r"judge.rubric: unknown rubric 'nope'; valid: \['concept_presence'\]"
    ):
        load_rubric("nope")


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("the weather today is cloudy and mild .", 0),
        (
            "cloudy and mild . the fog is thick today and the rain falls on the fields and roads .",
            1,
        ),
        (
            "we cooked soup , then saw fog and the bridge , then cooked pasta , bread , pie , "
            "stew , curry and rice .",
            2,
        ),
        ("bridge bridge the golden gate bridge over the bay in fog", 3),
        ("", 0),
    ],
)
def test_offline_judge_levels(text: str, level: int) -> None:
    judge = OfflineConceptJudge(load_rubric("concept_presence"))
    [verdict] = judge.judge([JudgeRequest(text=text, concept="Golden Gate Bridge", keywords=KW)])
    assert verdict.score == level
    assert verdict.judge == "offline-keyword-v1" and verdict.rubric.startswith("concept_presence@1")
    assert verdict.raw_reply.endswith(f"Score: {level}")
    assert "Golden Gate Bridge" in verdict.prompt


def test_no_keywords_is_unscored_not_zero() -> None:
    judge = OfflineConceptJudge(load_rubric("concept_presence"))
    [verdict] = judge.judge([JudgeRequest(text="anything at all", concept="x")])
    assert verdict.score is None and not verdict.scored
    assert "keywords" in (verdict.unscored_reason or "")


def test_a_judgement_is_scored_or_has_a_reason_never_both() -> None:
    common = dict(judge="j", rubric="r", prompt="p", raw_reply="x")
    with pytest.raises(ValidationError):
        Judgement(score=None, **common)
    with pytest.raises(ValidationError):
        Judgement(score=2, unscored_reason="api error", **common)
