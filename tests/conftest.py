"""Shared fixtures: the shipped toy world, loaded once, and an isolated MLflow store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.engine.backend import LoadedSAE, load_model, load_sae
from harness.spec import Experiment, FeatureByIndex, SaturationClamp, ToyModel, ToySAE
from harness.store import RunStore
from harness.toy.world import toy_sae_names

REPO = Path(__file__).resolve().parent.parent


def run_spec(spec: Path, *extra: str) -> RunStore:
    """``harness run SPEC --quiet --no-mlflow EXTRA`` in the current directory (it must succeed);
    returns the run's store."""
    assert main(["run", str(spec), "--quiet", "--no-mlflow", *extra]) == 0
    return RunStore.open("latest", Path("runs"))


def tiny_experiment(levels: tuple[float, ...] = (0, 1)) -> Experiment:
    """A one-study toy experiment for tests that only need a valid spec."""
    return Experiment(
        name="t",
        saes=(ToySAE(),),
        studies=(
            SaturationClamp(
                name="s",
                feature=FeatureByIndex(index=1, keywords=("a",)),
                levels=levels,
                prompts=("p",),
            ),
        ),
    )


@pytest.fixture(scope="session")
def toy_model():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return load_model(ToyModel(), "cpu")


@pytest.fixture(scope="session")
def toy_saes() -> dict[str, LoadedSAE]:
    return {name: load_sae(ToySAE(name=name), name, "cpu") for name in toy_sae_names()}


@pytest.fixture()
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def stats_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Feature statistics shared by the tests of one session (never the developer's cache)."""
    return tmp_path_factory.mktemp("stats-cache")


@pytest.fixture(autouse=True)
def _isolated_judge_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stats_cache: Path) -> None:
    """No test reaches a real API or a developer's judgement or statistics cache."""
    monkeypatch.setenv("HARNESS_STATS_CACHE", str(stats_cache))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.setenv("HARNESS_JUDGE_CACHE", str(tmp_path / "judge-cache.sqlite"))


@pytest.fixture(scope="session")
def hub_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline fixture hub (tests/hub_fixture.py): GPT-2 small, the gpt2-small-res-jb release
    and pythia-14m in the real cache layout, random weights; built once per session (~15 s)."""
    from tests.hub_fixture import build_hub

    return build_hub(tmp_path_factory.mktemp("hf-home"))


def use_hub(monkeypatch: pytest.MonkeyPatch, home: Path, offline: bool = True) -> None:
    """Point this process (and the processes it starts) at the hub cache under ``home``:
    huggingface_hub reads its environment once, at import, so its constants are patched too."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


@pytest.fixture()
def offline_hub(hub_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test sees the fixture hub, offline (HF_HUB_OFFLINE=1)."""
    use_hub(monkeypatch, hub_home)
    return hub_home
