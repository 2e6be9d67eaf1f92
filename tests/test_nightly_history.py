"""Nightly with history: each night's reports and regression file live in that night's folder
(a baseline's report is never rewritten), `list --nightly` shows the nights' runs, and
`harness history` prints the gated metrics night by night, also as an MLflow chart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.cli import main
from tests.test_regress import _checkpoint, _spec


def test_two_nights_keep_the_baselines_report_and_give_a_history(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mlflow_uri: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    specs = tmp_path / "specs"
    spec = _spec(specs, _checkpoint(tmp_path / "ckpt", "good", 0.0))
    runs = ["--runs", "runs"]
    assert main(["nightly", str(specs), *runs, "--no-mlflow", "--quiet"]) == 0
    [first] = list(Path("runs/nightly").glob("*/ckpt_gate-*"))
    assert main(["accept", str(first), *runs]) == 0
    [report] = list(Path("reports/nightly").glob(f"*/{first.name}.md"))
    assert report.parent.name == first.parent.name  # the night's folder, named by its time
    kept = report.read_bytes()

    for _ in range(2):
        time.sleep(1.1)  # nightly folders are named by the second
        assert main(["nightly", str(specs), *runs, "--no-mlflow", "--quiet"]) == 0
    assert report.read_bytes() == kept  # same run id, yet the baseline's report is untouched
    nights = sorted(p.name for p in Path("runs/nightly").iterdir())
    assert len(nights) == 3
    files = sorted(Path("reports/nightly").glob("*/*-regression.md"))
    assert [f.parent.name for f in files] == nights[1:]
    for f in files:  # named and headed by its night
        assert f.name.startswith(f.parent.name + "-")
        assert f"Night: `{f.parent.name}`" in f.read_text()

    capsys.readouterr()
    assert main(["list", *runs, "--nightly"]) == 0
    listed = capsys.readouterr().out
    assert all(night in listed for night in nights)

    assert main(["history", str(spec), *runs, "--metric", "concept_score", "--mlflow"]) == 0
    out = capsys.readouterr().out
    assert "history of ckpt_gate: 3 night(s)" in out
    for night in nights:
        assert f"{night}  {first.name}  (finished" in out
    lines = [x for x in out.splitlines() if x.startswith("  ckpt sweep 10x concept_score: ")]
    assert len(lines) == 3 and all("[" in x and "(n=10)" in x for x in lines)
    assert not any(" baseline " in x or "random_" in x for x in out.splitlines())

    import mlflow

    [run] = mlflow.search_runs(
        experiment_names=["ckpt_gate"],
        filter_string="tags.`harness.history` = 'ckpt_gate'",
        output_format="list",
    )
    history = mlflow.MlflowClient().get_metric_history(
        run.info.run_id, "history/ckpt/sweep/concept_score/10x"
    )
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert main(["history", "no_such_experiment", *runs]) == 1
