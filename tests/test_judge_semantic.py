"""The offline judge's semantic signal, its calibration on the toy world, and judge agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import harness
from harness.analysis.judge_agreement import cohen_kappa, judge_agreement
from harness.cli import main
from harness.judge import JudgeRequest, OfflineJudge, load_rubric
from harness.judge.semantic import LEVEL_1, LEVEL_2, calibrate
from tests.conftest import run_spec

# the spec keywords of a user's space study, without "satellite" (the example)
SPACE_KW = ("rocket", "astronaut", "telescope", "orbit", "mars", "moon", "planet")


def _score(text: str, semantic: bool = True, concept: str = "outer space") -> int | None:
    judge = OfflineJudge(load_rubric("concept_presence"), semantic=semantic)
    [v] = judge.judge([JudgeRequest(text=text, concept=concept, keywords=SPACE_KW)])
    return v.score


@pytest.mark.parametrize("concept", ["space", "outer space", "astronomy", "space_sweep"])
@pytest.mark.parametrize("keywords", [SPACE_KW, ("rocket", "planet", "star"), ("space",), ()])
def test_repeated_steered_text_is_read_by_what_it_repeats(
    concept: str, keywords: tuple[str, ...]
) -> None:
    judge = OfflineJudge(load_rubric("concept_presence"))
    for n in (2, 4, 8):
        text = " ".join(["dark satellite"] * n)
        [v] = judge.judge([JudgeRequest(text=text, concept=concept, keywords=keywords)])
        assert v.score is not None and v.score >= 2, (n, v.raw_reply)


def test_a_continuation_plainly_about_the_concept_in_unlisted_words_scores_at_least_2() -> None:
    text = "dark satellite dark satellite dark satellite dark satellite"
    assert _score(text, semantic=False) == 0  # the keyword count misses it
    assert _score(text) >= 2
    assert _score(text, concept="space") >= 2
    judge = OfflineJudge(load_rubric("concept_presence"))
    assert judge.name == "offline-semantic-v1"
    [v] = judge.judge([JudgeRequest(text=text, concept="outer space", keywords=SPACE_KW)])
    assert "semantic margin" in v.raw_reply and v.judge == "offline-semantic-v1"


@pytest.mark.parametrize(
    "text",
    [
        "the chef added salt to the soup and stirred it slowly .",
        "the team scored a late goal to win the cup .",
        "the the the the",
        "",
    ],
)
def test_text_about_something_else_scores_0(text: str) -> None:
    assert _score(text) == 0


def test_keywords_still_decide_dominance() -> None:
    assert _score("the rocket rocket rocket launched") == 3
    # meaning alone never claims dominance
    assert _score("a comet and a nebula and a galaxy drifted past the observatory") == 2


def test_the_thresholds_are_the_toy_worlds_calibration() -> None:
    cal = calibrate()
    assert cal.n_positive == 480 and cal.n_negative == 3360
    assert cal.level_1 == pytest.approx(LEVEL_1, abs=0.005)
    assert cal.level_2 == pytest.approx(LEVEL_2, abs=0.005)
    # concrete topics are recognised from half their vocabulary, rarely confused
    for topic in ("golden_gate", "cooking", "weather", "space", "music", "sport"):
        assert cal.per_topic[topic]["recall_1"] >= 0.95, topic
        assert cal.per_topic[topic]["false_2"] <= 0.035, topic


def test_cohen_kappa_matches_an_independent_implementation() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, 60)
    b = np.clip(a + rng.integers(-1, 2, 60), 0, 3)
    assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))
    assert cohen_kappa(a, b, "quadratic") == pytest.approx(
        metrics.cohen_kappa_score(a, b, weights="quadratic")
    )
    assert cohen_kappa(np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 1])) == pytest.approx(
        0.32 / 0.52
    )
    assert np.isnan(cohen_kappa(np.array([2, 2, 2]), np.array([2, 2, 2])))


def test_a_run_scored_by_two_judges_reports_their_agreement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "space.py"
    spec.write_text(
        "from harness import *\n"
        "from harness.toy.probes import NEUTRAL_PROMPTS\n"
        "def spec():\n"
        "    return Experiment(name='two_judges', saes=(ToySAE(),), studies=(SaturationClamp(\n"
        "        name='s', feature=FeatureByIndex(index=9, label='Golden Gate Bridge',\n"
        "        keywords=('golden',)), levels=(0, 2, 10), prompts=NEUTRAL_PROMPTS[:8],\n"
        "        controls=()),))\n"
    )
    store = run_spec(spec)
    first = json.loads((store.dir / "provenance.json").read_text())["judge"]
    assert first == "offline-semantic-v1"
    capsys.readouterr()
    assert main(["rescore", "latest", "--judge", "offline-keyword"]) == 0
    out = capsys.readouterr().out
    assert "agreement on concept_presence" in out and "κ" in out
    assert store.read_json("provenance.json")["judge"] == "offline-keyword-v1"
    report = next(Path("reports").glob(f"{store.run_id}.md")).read_text()
    assert "### Judge agreement" in report
    # the agreement table's κ is Cohen's κ over the items both judges scored
    scores: dict[str, dict[str, int]] = {}
    for j in store.records("judgement"):
        if j["rubric"].startswith("concept_presence@") and j["score"] is not None:
            scores.setdefault(j["judge"], {})[j["of"]] = j["score"]
    common = sorted(set(scores["offline-semantic-v1"]) & set(scores["offline-keyword-v1"]))
    a = np.array([scores["offline-keyword-v1"][k] for k in common])
    b = np.array([scores["offline-semantic-v1"][k] for k in common])
    [row] = [
        r
        for r in judge_agreement(list(store.records("judgement")), np.random.default_rng(0))
        if r.rubric == "concept_presence"
    ]
    assert row.kappa.n == len(common) == 8 * 4
    assert row.kappa.value == pytest.approx(cohen_kappa(a, b))
    assert row.exact.value == pytest.approx(float(np.mean(a == b)))
    assert row.kappa.ci_low <= row.kappa.value <= row.kappa.ci_high
    # fluency is the same rule in both judges: full agreement
    [flu] = [
        r
        for r in judge_agreement(list(store.records("judgement")), np.random.default_rng(0))
        if r.rubric == "fluency"
    ]
    assert flu.exact.value == 1.0
    # honest agreement: identical texts once, κ on the informative items, the pair marked as
    # one judge built on the other
    from harness.analysis.judge_agreement import item_texts

    texts = item_texts(store)
    [honest] = [
        r
        for r in judge_agreement(
            list(store.records("judgement")), np.random.default_rng(0), texts=texts
        )
        if r.rubric == "concept_presence"
    ]
    first: dict[str, str] = {}
    for k in common:
        first.setdefault(texts[k], k)
    distinct = sorted(first.values())
    assert honest.n_items == len(common) and honest.kappa.n == len(distinct) < len(common)
    a = np.array([scores["offline-keyword-v1"][k] for k in distinct])
    b = np.array([scores["offline-semantic-v1"][k] for k in distinct])
    assert honest.kappa.value == pytest.approx(cohen_kappa(a, b))
    lively = (a > 0) | (b > 0)
    assert honest.informative_kappa.n == int(lively.sum())
    assert honest.informative_kappa.value == pytest.approx(cohen_kappa(a[lively], b[lively]))
    assert honest.related == "offline-semantic-v1 builds on offline-keyword-v1"
    assert "Not independent raters" in report and "κ, either > 0" in report


def test_run_judge_and_limit_override_the_spec_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --judge K` keeps the run id and its generations and makes K the active judge;
    `run --limit N` is a partial run of its own, marked in its report."""
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.py"
    spec.write_text(
        "from harness import *\n"
        "from harness.toy.probes import NEUTRAL_PROMPTS\n"
        "def spec():\n"
        "    return Experiment(name='override', saes=(ToySAE(),), sae_quality=None,\n"
        "        studies=(SaturationClamp(name='s', feature=FeatureByIndex(index=9,\n"
        "        label='Golden Gate Bridge', keywords=('golden',)), levels=(0, 10),\n"
        "        prompts=NEUTRAL_PROMPTS[:6], controls=()),))\n"
    )
    store = run_spec(spec)
    generations = len(list(store.records("generation")))
    again = run_spec(spec, "--judge", "offline-keyword")
    assert again.dir == store.dir  # the judge kind is outside the spec hash
    assert len(list(store.records("generation"))) == generations  # nothing regenerated
    prov = store.read_json("provenance.json")
    assert prov["judge"] == "offline-keyword-v1"
    judges = {j["judge"] for j in store.records("judgement")}
    assert judges == {"offline-semantic-v1", "offline-keyword-v1"}
    # one metric name everywhere: the items' columns are the summary's metric names
    run = harness.load_run(str(store.dir))
    assert {"concept_score", "fluency_score", "instruction_score"} <= set(run.items.columns)
    assert "concept_presence" not in run.items.columns
    s = run.summary
    top = s[(s.condition == "10x") & (s.metric == "concept_score")].value.item()
    assert run.items[run.items.condition == "10x"].concept_score.mean() == pytest.approx(top)
    capsys.readouterr()

    part = run_spec(spec, "--limit", "2")
    assert part.dir != store.dir and part.experiment().limit == 2
    assert "partial run" in capsys.readouterr().out
    prompts = {g["prompt_index"] for g in part.records("generation")}
    assert prompts == {0, 1}
    report = next(Path("reports").glob(f"{part.run_id}.md")).read_text()
    assert "**Partial run** (`harness run --limit 2`)" in report
    with pytest.raises(SystemExit) as stop:  # argparse's usage error, before the spec loads
        main(["run", str(spec), "--quiet", "--no-mlflow", "--limit", "0"])
    assert stop.value.code == 2 and "at least 1" in capsys.readouterr().err


def test_the_offline_judges_figures_on_natural_text_are_the_measured_ones() -> None:
    """The evaluation set is kept apart from the toy calibration; docs/judges.md and the
    verdict notes quote these figures."""
    from harness.judge.base import NATURAL_TEXT_MEASURED as MEASURED
    from harness.judge.natural_eval import evaluate

    semantic = evaluate()
    assert (semantic.n_on, semantic.n_near, semantic.n_unrelated) == (20, 12, 8)
    assert (semantic.recall_2, semantic.near_miss_fp_2) == pytest.approx(
        MEASURED["offline-semantic-v1"], abs=1e-9
    )
    assert semantic.margin_auc < 0.6  # the margin does not separate them: said, not hidden
    keyword = evaluate(semantic=False)
    assert keyword.recall_1 == 0.0  # none of the on-concept sentences uses a keyword


def test_a_concept_verdict_on_a_real_models_text_by_the_offline_judge_says_it_is_unvalidated() -> (
    None
):
    import pandas as pd

    from harness import Experiment, FeatureByIndex, SaturationClamp
    from harness.analysis.compare_rows import unvalidated_note
    from harness.spec import PretrainedModel, ToyModel

    class Run:  # the loaded-run fields the note reads
        def __init__(self, model: object) -> None:
            self.experiment = Experiment(
                name="n",
                model=model,
                saes=({"kind": "toy"},),
                studies=(
                    SaturationClamp(
                        name="s",
                        feature=FeatureByIndex(index=1, keywords=("x",)),
                        levels=(0, 1),
                        prompts=("a", "b"),
                    ),
                ),
            )
            self.provenance = {"judge": "offline-semantic-v1", "rubric": "concept_presence@1#0"}
            self.records = pd.DataFrame({"kind": []})
            self.items = pd.DataFrame()

    real = unvalidated_note([Run(PretrainedModel(name="gpt2"))], "s", "concept_score")
    assert real.startswith("offline judge not validated on natural text (recall 0.30")
    assert unvalidated_note([Run(ToyModel())], "s", "concept_score") == ""
    assert unvalidated_note([Run(PretrainedModel(name="gpt2"))], "s", "fluency_score") == ""
