"""torch's CPU threads are chosen for the model (one for small models), overridable with
--threads, and recorded in provenance and the report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.store import RunStore

SPEC = """
from harness import Experiment, SaturationClamp, ToySAE
from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS

def spec():
    return Experiment(name={name!r}, saes=(ToySAE(),), studies=(SaturationClamp(
        name="s", feature=GOLDEN_GATE, levels=(0, 4), prompts=NEUTRAL_PROMPTS[:2], controls=()),))
"""


def _run(tmp_path: Path, name: str, *extra: str) -> RunStore:
    spec = tmp_path / f"{name}.py"
    spec.write_text(SPEC.format(name=name))
    assert main(["run", str(spec), "--quiet", "--no-mlflow", *extra]) == 0
    return RunStore.open("latest", Path("runs"))


def test_a_small_model_runs_on_one_thread_and_threads_can_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_THREADS", raising=False)
    saved = torch.get_num_threads()
    try:
        auto = _run(tmp_path, "auto").read_json("provenance.json")["threads"]
        assert auto["n"] == 1 and "one thread for a small model" in auto["reason"]
        store = _run(tmp_path, "fixed", "--threads", "2")
        fixed = store.read_json("provenance.json")["threads"]
        assert fixed == {"n": 2, "reason": "--threads / HARNESS_THREADS"}
        assert "HARNESS_THREADS" not in os.environ  # the caller's environment is left as it was
        report = next(Path("reports").glob(f"{store.run_id}.md")).read_text()
        assert "| threads | 2 (--threads / HARNESS\\_THREADS) |" in report
        # a resume that computes nothing keeps the computing session's figure
        assert main(["run", str(tmp_path / "fixed.py"), "--quiet", "--no-mlflow"]) == 0
        assert RunStore(store.dir).read_json("provenance.json")["threads"]["n"] == 2
        capsys.readouterr()
        assert main(["run", str(tmp_path / "auto.py"), "--quiet", "--threads", "0"]) != 0
        assert "--threads must be at least 1, got 0" in capsys.readouterr().err
    finally:
        torch.set_num_threads(saved)
