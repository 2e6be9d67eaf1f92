"""Controls of a saturation sweep: on by default, real generations, paired verdicts in the
summary and report; the Golden Gate feature beats its random controls at its recommended level."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.errors import SpecError
from harness.execute.plan import plan
from harness.spec import Experiment, FeatureByIndex, SaturationClamp, ToySAE
from harness.spec.validate import validate_static
from harness.studies.controls import parse_control
from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS
from tests.conftest import run_spec

SPEC = """
from harness import Experiment, SaturationClamp, ToySAE
from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS
def spec():
    return Experiment(name="controls", saes=(ToySAE(name="relu-256"),), studies=(
        SaturationClamp(name="sweep", feature=GOLDEN_GATE, levels=(0, 2, 5),
                        prompts=NEUTRAL_PROMPTS),))
"""


def _sweep(**kw: Any) -> Experiment:
    return Experiment(
        name="c",
        saes=(ToySAE(),),
        studies=(
            SaturationClamp(
                name="s", feature=GOLDEN_GATE, levels=(0, 2), prompts=NEUTRAL_PROMPTS[:3], **kw
            ),
        ),
    )


def test_controls_are_planned_by_default_and_can_be_turned_off() -> None:
    on = [it.condition for it in plan(_sweep()).items]
    controls = [c for c in on if parse_control(c) is not None]
    # per prompt at the one non-zero level: 2 random-feature draws, a random direction, the wrong
    # sign, additive steering; and one prompt-only row per prompt
    assert len(controls) == 3 * (2 + 1 + 1 + 1) + 3
    assert {parse_control(c)[0] for c in controls} == {  # type: ignore[index]
        "random_feature",
        "random_direction",
        "wrong_sign",
        "prompt_only",
        "additive",
    }
    # an additive sweep has nothing to compare additive steering with
    adding = [it.condition for it in plan(_sweep(intervention="add")).items]
    assert not any(c.startswith("additive") for c in adding)
    prompt_only = [it for it in plan(_sweep()).items if it.condition == "prompt_only"]
    assert all(
        it.prompt.startswith("tell me something on Golden Gate Bridge . ") for it in prompt_only
    )
    off = [it.condition for it in plan(_sweep(controls=())).items]
    assert not any(parse_control(c) for c in off)
    # the sweep's own items keep their keys whatever the controls
    assert {it.key for it in plan(_sweep(controls=())).items} <= {
        it.key for it in plan(_sweep()).items
    }


def test_the_prompt_only_control_needs_a_concept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")  # an API judge needs no keywords
    bare = Experiment(
        name="c",
        saes=(ToySAE(),),
        studies=(
            SaturationClamp(
                name="s",
                feature=FeatureByIndex(index=3),
                levels=(1,),
                prompts=("the weather today is",),
            ),
        ),
        judge={"kind": "anthropic"},
    )
    with pytest.raises(SpecError, match="prompt-only control") as err:
        validate_static(bare)
    assert err.value.field == "studies.0.controls"
    with pytest.raises(ValueError, match="duplicates"):
        _sweep(controls=("wrong_sign", "wrong_sign"))


def test_random_controls_are_matched_and_seeded(toy_model: Any, toy_saes: Any) -> None:
    from harness.engine.feature_stats import activation_stats
    from harness.studies.contract import StudyContext
    from harness.studies.controls_run import NEAREST, random_direction, random_features
    from harness.toy.world import eval_documents

    sae = toy_saes["relu-256"]
    stats = activation_stats(toy_model, sae, eval_documents()[:60], "test")
    ctx = StudyContext(_sweep(), toy_model, sae, stats, [], None, None, print, {})  # type: ignore[arg-type]
    drawn = random_features(ctx, 9, 3)
    assert drawn == random_features(ctx, 9, 3) and len(set(drawn)) == 3 and 9 not in drawn
    own = math.log(float(stats.max[9]))
    gaps = sorted(
        abs(math.log(float(m)) - own) for i, m in enumerate(stats.max) if i != 9 and m > 0
    )
    for f in drawn:  # among the nearest in max activation
        assert abs(math.log(float(stats.max[f])) - own) <= gaps[NEAREST - 1] + 1e-9
    d = random_direction(ctx, 9).W_dec[0]
    assert torch.isclose(d.norm(), sae.sae.W_dec[9].float().norm(), rtol=1e-5)
    cos = torch.nn.functional.cosine_similarity(d, sae.sae.W_dec[9].detach().float(), dim=0)
    assert abs(float(cos)) < 0.5  # not the feature's own direction


def test_the_golden_gate_feature_beats_its_random_controls_at_the_recommended_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "controls.py").write_text(SPEC)
    store = run_spec(tmp_path / "controls.py")
    summary = store.read_json("summary.json")
    rows = {(r["condition"], r["metric"]): r for r in summary}
    level = rows[("recommended", "level")]["value"]
    cond = f"{int(level)}x"
    for control in ("random_feature", "random_direction"):
        row = rows[(cond, f"concept_vs_{control}")]
        assert row["ci_low"] > 0, (control, row)
        assert row["n"] == len(NEUTRAL_PROMPTS)
    assert (cond, "concept_vs_prompt_only") in rows
    gens = [g for g in store.records("generation") if parse_control(g["condition"])]
    drawn = {g["feature"] for g in gens if g["condition"].startswith("random_feature")}
    assert len(drawn) == 2 and None not in drawn
    assert all(g["clamp_value"] < 0 for g in gens if g["condition"].startswith("wrong_sign"))
    assert (cond, "concept_vs_additive") in rows
    # what a clamp value means: the encoder's read-back of the clamped feature, per level
    readback = {r["condition"]: r for r in store.records("readback")}
    assert sorted(readback) == ["2x", "5x"]
    assert all(0 < r["ratio"] < 1.5 and r["tokens"] > 0 for r in readback.values())
    report = next(Path("reports").glob("controls-*.md")).read_text()
    assert "reads the feature back at this share of v" in report
    assert "### Controls (target prompts)" in report
    assert f"At the recommended level ({cond}) the feature's concept score beats" in report
    # the sweep's own tables do not list the controls as levels
    dose = report.split("### Dose–response (target prompts)", 1)[1].split("###", 1)[0]
    assert "random_feature" not in dose and "prompt_only" not in dose


ABLATION = """
from harness import Experiment, ToySAE
from harness.spec import Ablation
from harness.toy.probes import BRIDGE_PROMPTS, GOLDEN_GATE
def spec():
    return Experiment(name="ablation_controls", saes=(ToySAE(name="relu-256"),), studies=(
        Ablation(name="ablate", features=(GOLDEN_GATE,), prompts=BRIDGE_PROMPTS,
                 tokens=("bridge",)),))
"""


def test_an_ablation_is_measured_against_random_features_of_matched_activation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ablation.py").write_text(ABLATION)
    store = run_spec(tmp_path / "ablation.py")
    studied = next(store.records("feature"))["features"]
    controls = [r for r in store.records("next_token") if r["condition"].startswith("random_")]
    assert {r["condition"] for r in controls} == {"random_feature#1@zero", "random_feature#2@zero"}
    gens = [g for g in store.records("generation") if g["condition"].startswith("random_")]
    assert gens and all(not set(g["features"]) & set(studied) for g in gens)
    rows = {(r["condition"], r["metric"]): r for r in store.read_json("summary.json")}
    shift = rows[("zero", "logit_shift[bridge]_vs_random_feature")]
    assert shift["ci_high"] < 0  # zeroing the bridge feature lowers "bridge" more than random
    assert ("zero", "concept_vs_random_feature") in rows
    report = next(Path("reports").glob("ablation_controls-*.md")).read_text()
    assert "| logit\\_shift\\[bridge\\] |" in report and "beats it" in report
