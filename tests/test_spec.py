"""Spec model: frozen, strict, and a hash that ignores key order but not content."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from harness.spec import Experiment, FeatureByIndex, SaturationClamp, ToySAE


def _data(levels: list[float], prompts: list[str], index: int) -> dict:  # type: ignore[type-arg]
    return {
        "name": "exp",
        "saes": [{"kind": "toy", "name": "relu-256"}],
        "studies": [
            {
                "kind": "saturation",
                "name": "s",
                "levels": levels,
                "prompts": prompts,
                "feature": {"kind": "index", "index": index, "keywords": ["bridge"]},
            }
        ],
        "generation": {"max_new_tokens": 16, "greedy": True},
    }


def _shuffled(obj, rng):  # type: ignore[no-untyped-def]
    if isinstance(obj, dict):
        items = list(obj.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(obj, list):
        return [_shuffled(v, rng) for v in obj]
    return obj


levels_st = st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=5, unique=True)
prompts_st = st.lists(
    st.text("abc xyz", min_size=1).filter(str.strip), min_size=1, max_size=4, unique=True
)


@settings(max_examples=50, deadline=None)
@given(levels=levels_st, prompts=prompts_st, index=st.integers(0, 255), seed=st.integers(0, 99))
def test_hash_is_stable_under_field_reordering(levels, prompts, index, seed) -> None:  # type: ignore[no-untyped-def]
    data = _data(levels, prompts, index)
    a = Experiment.model_validate(data)
    b = Experiment.model_validate(_shuffled(json.loads(json.dumps(data)), random.Random(seed)))
    assert a.spec_hash() == b.spec_hash()


@settings(max_examples=50, deadline=None)
@given(levels=levels_st, prompts=prompts_st, index=st.integers(0, 254))
def test_hash_changes_when_an_output_affecting_field_changes(levels, prompts, index) -> None:  # type: ignore[no-untyped-def]
    base = Experiment.model_validate(_data(levels, prompts, index)).spec_hash()
    changed = [
        _data(levels, prompts, index + 1),
        _data([*levels, max(levels) + 1], prompts, index),
        _data(levels, [*prompts, "qqq"], index),
        {**_data(levels, prompts, index), "seed": 1},
        {**_data(levels, prompts, index), "generation": {"max_new_tokens": 17}},
    ]
    for data in changed:
        assert Experiment.model_validate(data).spec_hash() != base


def test_specs_are_frozen_and_reject_unknown_fields() -> None:
    exp = Experiment.model_validate(_data([1.0], ["p"], 1))
    with pytest.raises(ValidationError):
        exp.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Experiment.model_validate({**_data([1.0], ["p"], 1), "surprise": 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": (float("nan"),)}, "must be finite"),
        ({"levels": (float("inf"),)}, "must be finite"),
        ({"levels": (1.0, 1.0)}, "duplicates"),
        ({"levels": ()}, "at least 1"),
        ({"prompts": ()}, "the prompt set is empty"),
        ({"prompts": ("  ",)}, "prompt 0 is blank"),
    ],
)
def test_study_validation_messages(kwargs, message) -> None:  # type: ignore[no-untyped-def]
    args = dict(name="s", feature=FeatureByIndex(index=1), levels=(1.0,), prompts=("p",))
    with pytest.raises(ValidationError, match=message):
        SaturationClamp(**{**args, **kwargs})


def test_duplicate_study_names_are_rejected() -> None:
    study = SaturationClamp(
        name="s", feature=FeatureByIndex(index=1), levels=(1.0,), prompts=("p",)
    )
    with pytest.raises(ValidationError, match="duplicate study names"):
        Experiment(name="e", saes=(ToySAE(),), studies=(study, study))


def test_item_keys_ignore_runtime_only_options() -> None:
    from harness.execute.plan import plan

    data = _data([1.0, 5.0], ["a", "b"], 3)
    a = Experiment.model_validate(data)
    b = Experiment.model_validate({**data, "model": {"kind": "toy", "device": "cuda"}})
    assert a.spec_hash() == b.spec_hash()
    keys = [i.key for i in plan(a, batch_size=64).items]
    assert keys == [i.key for i in plan(b, batch_size=2).items]
    assert len(keys) == len(set(keys))
    sweep = [i for i in plan(a).items if i.condition in ("baseline", "1x", "5x")]
    assert len(sweep) == 2 * 3  # the rest are the sweep's controls
    c = Experiment.model_validate({**data, "seed": 7})
    assert not set(keys) & {i.key for i in plan(c).items}


def test_every_spec_in_the_readme_validates(tmp_path: Path, offline_hub: Path) -> None:
    """Toy specs and the real-model one (its configs read from the offline fixture hub)."""
    import re

    from harness.spec.loading import load_spec
    from harness.spec.validate import validate_static

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "def spec()" in b]
    assert len(blocks) >= 2
    # the README's specs are written to live in experiments/, beside experiments/data/
    shutil.copytree(Path(__file__).parents[1] / "experiments" / "data", tmp_path / "data")
    for i, block in enumerate(blocks):
        path = tmp_path / f"readme_{i}.py"
        path.write_text(block)
        validate_static(load_spec(path))
