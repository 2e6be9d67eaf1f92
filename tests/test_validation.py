"""Rule 1: a table of bad specs, each reported by `harness validate` in one line, exit code 2."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.cli import main

HEADER = "from harness import *\nfrom harness.spec import *\n"
FEATURE = "FeatureByIndex(index=3, keywords=('bridge',))"


def study(**overrides: str) -> str:
    args = {"name": "'s'", "feature": FEATURE, "levels": "(1, 5)", "prompts": "('the bay',)"}
    args.update(overrides)
    return "SaturationClamp(" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"


def experiment(studies: str | None = None, **overrides: str) -> str:
    args = {"name": "'x'", "saes": "(ToySAE(),)", "studies": f"({studies or study()},)"}
    args.update(overrides)
    body = "Experiment(" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"
    return f"{HEADER}def spec():\n    return {body}\n"


# case name → (spec source, text the one-line error must contain)
BAD: dict[str, tuple[str, str]] = {
    "syntax_error": ("def spec(:\n", "syntax error"),
    "no_spec_function": ("x = 1\n", "defines no function spec()"),
    "spec_returns_other": ("def spec():\n    return {'name': 'x'}\n", "returned dict"),
    "spec_raises": (
        "def spec():\n    raise RuntimeError('nope')\n",
        "spec() raised RuntimeError: nope",
    ),
    "import_fails": ("import not_a_module\n", "No module named 'not_a_module'"),
    "levels_wrong_type": (
        experiment(study(levels="'high'")),
        "SaturationClamp.levels: Input should be a valid tuple",
    ),
    "unknown_experiment_field": (experiment(colour="1"), "colour: Extra inputs are not permitted"),
    "unknown_study_field": (experiment(study(strength="3")), "strength: Extra inputs"),
    "empty_prompt_set": (experiment(study(prompts="()")), "the prompt set is empty"),
    "blank_prompt": (experiment(study(prompts="('ok', '  ')")), "prompt 1 is blank"),
    "negative_level": (
        experiment(study(levels="(-1,)")),
        "clamp level -1.0 must be finite and >= 0",
    ),
    "nan_level": (experiment(study(levels="(float('nan'),)")), "clamp level nan must be finite"),
    "inf_level": (experiment(study(levels="(float('inf'),)")), "clamp level inf must be finite"),
    "duplicate_levels": (experiment(study(levels="(1, 1)")), "contain duplicates"),
    "feature_index_too_big": (
        experiment(study(feature="FeatureByIndex(index=256, keywords=('b',))")),
        "studies.0.feature.index: feature index 256 is out of range for SAE 'toy/relu-256' "
        "(d_sae=256; valid: 0..255)",
    ),
    "unknown_hook_point": (
        experiment(saes="(ToySAE(hook='blocks.7.hook_resid_pre'),)"),
        "saes.0.hook: unknown hook point 'blocks.7.hook_resid_pre'; "
        "valid: ['blocks.0.hook_resid_pre'",
    ),
    "duplicate_study_names": (experiment(f"{study()}, {study()}"), "duplicate study names ['s']"),
    "duplicate_saes": (experiment(saes="(ToySAE(), ToySAE())"), "listed more than once"),
    "unknown_rubric": (
        experiment(judge="JudgeSettings(rubric='vibes')"),
        "judge.rubric: unknown rubric 'vibes'; valid: ['concept_presence', 'fluency',",
    ),
    "zero_new_tokens": (
        experiment(generation="GenerationSettings(max_new_tokens=0)"),
        "GenerationSettings.max_new_tokens: Input should be greater than 0",
    ),
    "absurd_new_tokens": (
        experiment(generation="GenerationSettings(max_new_tokens=10**6)"),
        "GenerationSettings.max_new_tokens: Input should be less than or equal to 4096",
    ),
    "new_tokens_exceed_toy_context": (
        experiment(generation="GenerationSettings(max_new_tokens=64)"),
        "generation.max_new_tokens: max_new_tokens=64 does not fit the toy model's context of 64",
    ),
    "prompt_too_long_for_context": (
        experiment(study(prompts="('word ' * 50,)")),
        "studies.0.prompts.0: prompt of 51 tokens + max_new_tokens=24 exceeds",
    ),
    "sae_width_mismatch": (
        experiment(
            saes="(LocalSAE(path=str(__import__('pathlib').Path(__file__).parent / 'narrow')),)"
        ),
        "saes.0: SAE 'narrow' has d_in=32 but the model's width is 64",
    ),
    "local_sae_missing": (experiment(saes="(LocalSAE(path='/nonexistent/sae'),)"), "saes.0.path"),
    "missing_prompt_file": (
        experiment(study(prompts="PromptFile(path='missing.txt')")),
        "studies.0.prompts: prompt file 'missing.txt' not found",
    ),
    "bad_jsonl_prompt_file": (
        experiment(study(prompts="PromptFile(path='bad.jsonl')")),
        "bad.jsonl:1: expected a JSON object with a 'prompt' or 'text' field",
    ),
    "prompt_file_outside_the_project": (
        experiment(study(prompts="PromptFile(path='/etc/hostname')")),
        "studies.0.prompts: prompt file '/etc/hostname' is outside the spec's folder",
    ),
    "nul_in_a_prompt": (
        experiment(study(prompts="('a bridge', 'the bay\\x00 at dusk')")),
        "prompt 1 holds the control character U+0000 at character 7",
    ),
    "escape_in_a_prompt": (
        experiment(study(prompts="('a \\x1b[31m bridge',)")),
        "prompt 0 holds the control character U+001B at character 2",
    ),
    "unknown_toy_sae": (
        experiment(saes="(ToySAE(name='huge'),)"),
        "saes.0.name: unknown toy SAE 'huge'; valid: ['relu-1024', 'relu-256', 'topk-256']",
    ),
    "unknown_pretrained_model": (
        experiment(model="PretrainedModel(name='gpt-17')"),
        "model.name: TransformerLens does not know the model 'gpt-17'",
    ),
    "unknown_sae_release": (
        experiment(saes="(PretrainedSAE(release='gpt2-small-res-jbb', sae_id='x'),)"),
        "saes.0.release: unknown SAELens release 'gpt2-small-res-jbb'; did you mean",
    ),
    "unknown_sae_id": (
        experiment(saes="(PretrainedSAE(release='gpt2-small-res-jb', sae_id='blocks.99'),)"),
        "saes.0.sae_id: release 'gpt2-small-res-jb' has no SAE 'blocks.99'",
    ),
    "match_reference_missing": (
        experiment(
            study(
                feature="FeatureByMatch(reference_sae='toy/other', reference_index=1, "
                "keywords=('b',))"
            )
        ),
        "studies.0.feature.reference_sae: reference_sae 'toy/other' is not an SAE of this spec",
    ),
    "offline_judge_without_keywords": (
        experiment(study(feature="FeatureByIndex(index=3)")),
        "studies.0.feature.keywords: the offline judge needs concept keywords",
    ),
    "bad_name": (experiment(name="'my experiment'"), "name: String should match pattern"),
    "unknown_feature_kind": (
        experiment(study(feature="{'kind': 'magic', 'index': 1}")),
        "does not match any of the expected tags: 'index', 'contrast', 'match'",
    ),
    "negative_ablation_position": (
        experiment(
            "Ablation(name='a', features=(FeatureByIndex(index=1),), prompts=('x',), "
            "positions=(-2,))"
        ),
        "positions [-2] must be >= 0",
    ),
    "specificity_bins_not_increasing": (
        experiment(
            "Specificity(name='sp', feature=FeatureByIndex(index=1, keywords=('b',)), "
            "bins=(0.5, 0.25))"
        ),
        "bin edges [0.5, 0.25] must be strictly increasing",
    ),
}


@pytest.fixture()
def spec_dir(tmp_path: Path) -> Path:
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    (narrow / "cfg.json").write_text(
        json.dumps(
            {
                "d_in": 32,
                "d_sae": 64,
                "architecture": "standard",
                "metadata": {"hook_name": "blocks.1.hook_resid_pre"},
            }
        )
    )
    (narrow / "sae_weights.safetensors").write_bytes(b"")
    (tmp_path / "bad.jsonl").write_text('["not an object"]\n')
    return tmp_path


def test_the_table_is_large() -> None:
    assert len(BAD) >= 25


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_gives_one_clear_line_and_exit_2(
    case: str, spec_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, expected = BAD[case]
    path = spec_dir / f"{case}.py"
    path.write_text(source)
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("harness: error: ") and captured.err.count("\n") == 1
    assert expected in captured.err
    assert "Traceback" not in captured.err


def test_good_spec_with_prompt_files_validates(
    spec_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (spec_dir / "prompts.txt").write_text("the weather today is\n\nfans filled the\n")
    (spec_dir / "prompts.jsonl").write_text('{"prompt": "the band played a"}\n')
    path = spec_dir / "good.py"
    first = study(prompts="PromptFile(path='prompts.txt')")
    second = study(name="'t'", prompts="PromptFile(path='prompts.jsonl')")
    path.write_text(experiment(f"{first}, {second}"))
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ok: x")
    from harness.spec.loading import load_spec

    exp = load_spec(path)
    assert exp.studies[0].prompts == ("the weather today is", "fans filled the")
    assert exp.studies[1].prompts == ("the band played a",)


def test_unreachable_pretrained_model_fails_fast(
    spec_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No hub, nothing cached: a clear error in seconds, not minutes of retries."""
    monkeypatch.chdir(spec_dir)
    monkeypatch.setenv("HF_HOME", str(spec_dir / "hf"))  # an empty cache
    path = spec_dir / "gpt2.py"
    path.write_text(
        experiment(
            study(levels="(1, 5)", **{"level_unit": "'absolute'"}),
            model="PretrainedModel(name='gpt2')",
            saes="(PretrainedSAE(release='gpt2-small-res-jb', sae_id='blocks.3.hook_resid_pre'),)",
        )
    )
    import harness.engine.hub as hub

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    started = time.monotonic()
    assert main(["run", str(path), "--quiet", "--no-mlflow"]) == 2
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert "model.name: cannot download model 'gpt2': the Hugging Face hub is unreachable" in err


def test_a_mistyped_field_gets_a_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    spec = tmp_path / "typo.py"
    spec.write_text(
        "from harness import Experiment, SaturationClamp, ToySAE\n"
        "from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS\n"
        "def spec():\n"
        "    return Experiment(name='t', saes=(ToySAE(),), seeed=3, studies=(dict(\n"
        "        kind='saturation', name='s', feature=GOLDEN_GATE, levels=(0, 5),\n"
        "        prompts=NEUTRAL_PROMPTS, contrls=()),))\n"
    )
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "contrls: Extra inputs are not permitted (got ()); did you mean 'controls'?" in err
    assert "seeed: Extra inputs are not permitted (got 3); did you mean 'seed'?" in err
    # the object's own field wins, and a field is never suggested for itself
    spec.write_text(
        "from harness import Ablation, Experiment, ToySAE\n"
        "from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS\n"
        "def spec():\n"
        "    return Experiment(name='t', saes=(ToySAE(),), studies=(Ablation(\n"
        "        name='a', feature=GOLDEN_GATE, prompts=NEUTRAL_PROMPTS),))\n"
    )
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "Ablation.feature: Extra inputs are not permitted" in err
    assert "did you mean 'features'?" in err and "did you mean 'feature'?" not in err


def test_prompt_files_are_read_inside_the_project_unless_allowed(
    spec_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harness.spec.loading import load_spec

    outside = tmp_path_factory.mktemp("elsewhere") / "shared_prompts.txt"
    outside.write_text("the weather today is\n")
    monkeypatch.chdir(spec_dir)
    path = spec_dir / "outside.py"
    path.write_text(experiment(study(prompts=f"PromptFile(path={str(outside)!r})")))
    assert main(["validate", str(path)]) == 2
    assert "is outside the spec's folder" in capsys.readouterr().err
    path.write_text(
        experiment(study(prompts=f"PromptFile(path={str(outside)!r}, allow_outside=True)"))
    )
    assert main(["validate", str(path)]) == 0
    assert load_spec(path).studies[0].prompts == ("the weather today is",)  # type: ignore[union-attr]
    # a control character read from a file is refused like one written in the spec
    (spec_dir / "nul.txt").write_text("fine prompt\nbad\x00prompt\n")
    path.write_text(experiment(study(prompts="PromptFile(path='nul.txt')")))
    assert main(["validate", str(path)]) == 2
    assert "prompt 1 holds the control character U+0000" in capsys.readouterr().err


LOCATED = """from harness import (
    Experiment, FeatureByIndex, GenerationSettings, SaturationClamp, ToySAE)

FEATURE = FeatureByIndex(
    index={index},
    keywords=("bridge",),
)


def spec():
    return Experiment(
        name="located",
        saes=(ToySAE(),),
        generation=GenerationSettings(
            max_new_tokens={tokens}),
        studies=(
            SaturationClamp(
                name="s",
                feature=FEATURE,
                levels=(0, 5),
                prompts=("the chef added salt to the", "a cold wind blows and the"),
                controls={controls},
            ),
        ),
    )
"""


@pytest.mark.parametrize(
    ("index", "tokens", "controls", "where"),
    [
        (256, 8, "()", "spec.py:5: studies.0.feature.index: feature index 256"),  # at import
        (9, -3, "()", "spec.py:15: GenerationSettings.max_new_tokens:"),  # while spec() runs
        (9, 8, '("prompt_ony",)', "spec.py:22: SaturationClamp.controls.0:"),
    ],
)
def test_a_field_error_names_the_spec_line_where_the_field_was_set(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    index: int,
    tokens: int,
    controls: str,
    where: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("spec.py").write_text(LOCATED.format(index=index, tokens=tokens, controls=controls))
    assert main(["validate", "spec.py"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"harness: error: {where}"), line
