"""Rubric parsing and the offline concept-presence judge."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.errors import SpecError
from harness.judge import Judgement, JudgeRequest, OfflineJudge, load_rubric
from harness.toy.lexicon import topic_lexicon

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
        SpecError,
        match=r"judge.rubric: unknown rubric 'nope'; valid: \['concept_presence', 'fluency'",
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
    judge = OfflineJudge(load_rubric("concept_presence"), semantic=False)
    [verdict] = judge.judge([JudgeRequest(text=text, concept="Golden Gate Bridge", keywords=KW)])
    assert verdict.score == level
    assert verdict.judge == "offline-keyword-v1" and verdict.rubric.startswith("concept_presence@1")
    assert verdict.raw_reply.endswith(f"Score: {level}")
    assert "Golden Gate Bridge" in verdict.prompt


def test_no_keywords_is_unscored_not_zero() -> None:
    judge = OfflineJudge(load_rubric("concept_presence"), semantic=False)
    [verdict] = judge.judge([JudgeRequest(text="anything at all", concept="x")])
    assert verdict.score is None and not verdict.scored
    assert "keywords" in (verdict.unscored_reason or "")
    # the semantic judge reads the description instead; with neither it cannot score either
    semantic = OfflineJudge(load_rubric("concept_presence"))
    [verdict] = semantic.judge([JudgeRequest(text="anything at all", concept="")])
    assert verdict.score is None and "keywords" in (verdict.unscored_reason or "")


def test_a_judgement_is_scored_or_has_a_reason_never_both() -> None:
    common = dict(judge="j", rubric="r", prompt="p", raw_reply="x")
    with pytest.raises(ValidationError):
        Judgement(score=None, **common)
    with pytest.raises(ValidationError):
        Judgement(score=2, unscored_reason="api error", **common)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("fog rolls over the <<bridge>> at dawn", 3),
        ("the fog rolls <<over>> the towers", 2),
        ("the bridge was built long ago , and then we went home to <<cook>> dinner", 1),
        ("we went home to <<cook>> dinner", 0),
    ],
)
def test_offline_specificity_levels(text: str, level: int) -> None:
    judge = OfflineJudge(load_rubric("specificity"))
    [verdict] = judge.judge([JudgeRequest(text=text, concept="Golden Gate Bridge", keywords=KW)])
    assert verdict.score == level, verdict.raw_reply


def test_offline_specificity_needs_a_highlight() -> None:
    judge = OfflineJudge(load_rubric("specificity"))
    [verdict] = judge.judge([JudgeRequest(text="no marker", concept="c", keywords=KW)])
    assert verdict.score is None and "highlighted" in (verdict.unscored_reason or "")


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("cloudy and mild . a cold wind blows and the sky is stormy .", 2),
        ("the forecast says rain . the forecast says rain . the forecast says rain", 1),
        ("bridge bridge bridge bridge bridge bridge", 0),
        ("", 0),
    ],
)
def test_offline_fluency_levels(text: str, level: int) -> None:
    [verdict] = OfflineJudge(load_rubric("fluency")).judge([JudgeRequest(text=text, concept="")])
    assert verdict.score == level, verdict.raw_reply


@pytest.mark.parametrize(
    ("prompt", "text", "level"),
    [
        ("the weather today is", "cloudy and cold . the forecast says snow later .", 2),
        ("the weather today is", "cloudy , then the bridge towers and the bay and the fog", 1),
        ("the weather today is", "bridge bridge bridge bridge", 0),
    ],
)
def test_offline_instruction_levels(prompt: str, text: str, level: int) -> None:
    judge = OfflineJudge(load_rubric("instruction"), topic_lexicon())
    [verdict] = judge.judge([JudgeRequest(text=text, concept="", prompt=prompt)])
    assert verdict.score == level, verdict.raw_reply
    assert prompt in verdict.prompt


def test_offline_instruction_without_a_topic_is_unscored() -> None:
    judge = OfflineJudge(load_rubric("instruction"), topic_lexicon())
    [verdict] = judge.judge([JudgeRequest(text="anything", concept="", prompt="hello there")])
    assert verdict.score is None and verdict.unscored_reason


def test_steering_score_is_the_harmonic_mean_of_normalised_scores(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from harness.analysis.aggregate import summarise
    from harness.store import RunStore
    from tests.conftest import tiny_experiment

    exp = tiny_experiment((1.0,))
    store = RunStore.for_experiment(exp, tmp_path)
    idents = {n: load_rubric(n).ident for n in ("concept_presence", "fluency", "instruction")}
    store.write_json(
        "provenance.json", {"judge": "j", "rubric": idents["concept_presence"], "rubrics": idents}
    )
    base = {"sae": "x", "study": "s", "condition": "1x", "prompt_index": 0}
    generation = {**base, "level": 1.0, "prompt": "p", "continuation": "c", "tokens": [1]}
    store.append([{"kind": "generation", "key": k, **generation} for k in ("g1", "g2")])
    scores = {"g1": (3, 2, 1), "g2": (1, 2, None)}  # g2's instruction judgement failed
    for gen, triple in scores.items():
        for (name, ident), score in zip(idents.items(), triple, strict=True):
            store.append(
                [
                    {
                        **base,
                        "judge": "j",
                        "prompt": "judge this",
                        "raw_reply": f"Score: {score}",
                        "kind": "judgement",
                        "key": f"{gen}{name}",
                        "of": gen,
                        "rubric": ident,
                        "score": score,
                        "unscored_reason": None if score is not None else "api error",
                    }
                ]
            )
    rows = {r["metric"]: r for r in summarise(store, seed=0)}
    # g1: concept 3/3 = 1, fluency 2/2 = 1, instruction 1/2 = 0.5 → 3 / (1 + 1 + 2) = 0.75
    assert rows["steering_score"]["value"] == pytest.approx(0.75)
    assert rows["steering_score"]["n"] == 1  # g2 is not scored on all three
    assert rows["instruction_score"]["n"] == 1 and rows["concept_score"]["n"] == 2
