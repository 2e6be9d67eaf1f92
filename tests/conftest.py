"""Shared fixtures: the shipped toy world, loaded once, and an isolated MLflow store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from harness.backend import LoadedSAE, load_model, load_sae
from harness.spec import ToyModel, ToySAE
from harness.toy.world import toy_sae_names

REPO = Path(__file__).resolve().parent.parent


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
