"""MLflow under stress: SIGTERM mid-run, two runs logging to one store at once; and reports that
hostile generated text cannot break."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from harness.cli import main
from harness.store import RunStore
from tests.conftest import REPO, run_spec

DEMO = REPO / "experiments" / "toy_golden_gate.py"


def _tiny(path: Path, name: str) -> Path:
    path.write_text(
        "from harness import Experiment, SaturationClamp, ToySAE\n"
        "from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS\n"
        "def spec():\n"
        f"    return Experiment(name={name!r}, saes=(ToySAE(),), studies=(SaturationClamp(\n"
        "        name='s', feature=GOLDEN_GATE, levels=(0, 10), prompts=NEUTRAL_PROMPTS[:6]),))\n"
    )
    return path


def _cli(args: list[str], cwd: Path, uri: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigterm_leaves_the_mlflow_run_killed_and_the_store_resumable(
    tmp_path: Path, mlflow_uri: str
) -> None:
    proc = _cli(["run", str(DEMO), "--quiet", "--batch-size", "8"], tmp_path, mlflow_uri)
    deadline = time.monotonic() + 120
    records = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(tmp_path.glob("runs/*/records.jsonl"))
        if found and found[0].read_bytes().count(b"\n") >= 20:
            records = found[0]
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert records is not None and proc.returncode == 130, err.decode()[-2000:]
    assert b"interrupted" in err
    store = RunStore(records.parent)
    assert store.read_json("status.json")["status"] == "killed"
    [killed] = mlflow.search_runs(experiment_names=["toy_golden_gate"], output_format="list")
    assert killed.info.status == "KILLED"

    again = _cli(["run", str(DEMO), "--quiet"], tmp_path, mlflow_uri)
    assert again.wait(timeout=300) == 0
    assert store.read_json("status.json")["status"] == "finished"
    keys = [r["key"] for r in store.records()]
    assert len(keys) == len(set(keys))
    # one parent per run id: the resumed attempt replaced the killed one (deleted, still KILLED)
    runs = mlflow.search_runs(experiment_names=["toy_golden_gate"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert parents[0].data.tags["harness.run_id"] == store.run_id
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert all(c.data.tags["harness.run_id"] == store.run_id for c in children)  # like the parent
    gone = mlflow.MlflowClient().get_run(killed.info.run_id).info
    assert gone.status == "KILLED" and gone.lifecycle_stage == "deleted"


def test_two_runs_logging_at_once_to_one_local_store_both_succeed(
    tmp_path: Path, mlflow_uri: str
) -> None:
    procs = [
        _cli(["run", str(_tiny(tmp_path / f"{n}.py", n)), "--quiet"], tmp_path, mlflow_uri)
        for n in ("first", "second")
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    for name in ("first", "second"):
        runs = mlflow.search_runs(experiment_names=[name], output_format="list")
        parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert [r.info.status for r in parents] == ["FINISHED"]
        assert len(runs) == 3  # parent + nested runs (SAE × study, SAE × sae_quality)


HOSTILE = (
    "| a | b |\n|---|---|\n`code` ``` <script>alert(1)</script> <b>bold</b> **x** [link](http://e) "
    "# heading \\| escaped pipe \r\n trailing |"
)


def test_hostile_generated_text_cannot_break_report_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = run_spec(_tiny(tmp_path / "hostile.py", "hostile"))
    lines = store.records_path.read_text().splitlines()
    out = []
    for line in lines:
        r = json.loads(line)
        if r["kind"] == "generation":
            r["continuation"] = HOSTILE
            r["prompt"] = HOSTILE
        if r["kind"] == "next_token":
            r["base_top"] = r["iv_top"] = r["prompt"] = "|`<i>"
        if r["kind"] == "top_features":
            r["prompt"] = HOSTILE
            for f in r["features"]:
                f["token"] = "|`<i>"
        out.append(json.dumps(r))
    store.records_path.write_text("\n".join(out) + "\n")
    assert main(["report", "latest", "--runs", "runs"]) == 0
    assert main(["report", "latest", "--runs", "runs", "--template", "lab"]) == 0
    full = (Path("reports") / f"{store.run_id}.md").read_text()
    lab = (Path("reports") / f"{store.run_id}-lab.md").read_text()
    for text in (full, lab):
        assert "<script>" not in text and "<b>" not in text and "<i>" not in text
        tables = re.findall(r"(?:^\|.*\|$\n?)+", text, re.M)
        assert len(tables) >= 3
        for block in tables:
            rows = block.strip("\n").split("\n")
            widths = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
            assert len(widths) == 1, block  # every row has the header's number of cells
    assert "example continuations" in full.lower()
    assert "## Top features per prompt" in lab and "## Attack" in lab


def test_log_rebuilds_the_mlflow_view_from_the_store_and_replaces_it(
    tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`harness log` needs only the run store; a second rebuild replaces the first."""
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.py"
    spec.write_text(
        "from harness import Experiment, FeatureByIndex, SaturationClamp, ToySAE\n"
        "def spec():\n"
        "    return Experiment(name='logged', saes=(ToySAE(),), studies=(SaturationClamp(\n"
        "        name='s', feature=FeatureByIndex(index=9, keywords=('bridge',)),\n"
        "        levels=(0, 5), prompts=('the chef added salt to the', 'a cold wind')),))\n"
    )
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
    store = RunStore.open("latest", Path("runs"))
    summary = store.read_json("summary.json")
    for _ in range(2):
        assert main(["log", "latest"]) == 0
    runs = mlflow.search_runs(experiment_names=["logged"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1  # the second rebuild replaced the first
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["harness.run_id"] == store.run_id
    assert parent.data.tags["harness.view"] == "rebuilt"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert {c.data.tags["study"] for c in children} == {"s", "sae_quality"}
    [sweep] = [c for c in children if c.data.tags["study"] == "s"]
    [row] = [r for r in summary if r["metric"] == "concept_score" and r["condition"] == "5x"]
    assert sweep.data.metrics["concept_score/5x"] == pytest.approx(row["value"])
    # one parent per run id whichever way it was logged: a re-run replaces the rebuild, and
    # a rebuild replaces the run's own parent
    for command, view in ((["run", str(spec), "--quiet"], None), (["log", "latest"], "rebuilt")):
        assert main(command) == 0
        runs = mlflow.search_runs(experiment_names=["logged"], output_format="list")
        parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert [p.data.tags.get("harness.view") for p in parents] == [view]
        assert len(runs) == 3  # the parent and its two nested runs, nothing left over
    # the same spec run into another run store (as each night's `nightly` folder is) keeps
    # the earlier store's parent: one parent per run id *and* run directory
    assert main(["run", str(spec), "--quiet", "--runs", "elsewhere"]) == 0
    runs = mlflow.search_runs(experiment_names=["logged"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and len({p.data.tags["harness.run_dir"] for p in parents}) == 2
    # a night's run is named by its night, ahead of the run id the UI would cut short
    night = Path("runs", "nightly", "20261207-000000")
    assert main(["run", str(spec), "--quiet", "--runs", str(night)]) == 0
    runs = mlflow.search_runs(experiment_names=["logged"], output_format="list")
    names = [r.info.run_name for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert f"night 2026-12-07 00:00 · {store.run_id}" in names
    assert len(set(names)) == len(names) == 3, names
    assert all(n.startswith(("run 20", "rebuilt 20", "night 20")) for n in names), names


def test_a_spec_names_a_rubric_file_and_views_use_the_text_as_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.analysis.aggregate import summarise
    from harness.judge.rubric import RUBRIC_DIR

    monkeypatch.chdir(tmp_path)
    own = (RUBRIC_DIR / "concept_presence.txt").read_text().replace("version: 1", "version: 7")
    (tmp_path / "my_concept.txt").write_text(own)
    spec = tmp_path / "spec.py"
    spec.write_text(
        "from harness import Experiment, FeatureByIndex, JudgeSettings, SaturationClamp, ToySAE\n"
        "def spec():\n"
        "    return Experiment(name='own_rubric', saes=(ToySAE(),), studies=(SaturationClamp(\n"
        "        name='s', feature=FeatureByIndex(index=9, keywords=('bridge',)),\n"
        "        levels=(0, 5), prompts=('the chef added salt to the', 'a cold wind')),),\n"
        "        judge=JudgeSettings(rubric='my_concept.txt'), sae_quality=None)\n"
    )
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    store = RunStore.open("latest", Path("runs"))
    prov = store.read_json("provenance.json")
    assert prov["rubric"].startswith("concept_presence@7#")
    assert prov["rubric_texts"][prov["rubric"]] == own
    before = store.read_json("summary.json")
    # the file changes after judging: views keep the scale the run was judged on
    (tmp_path / "my_concept.txt").write_text(own.replace("scale: 0-3", "scale: 0-9"))
    rebuilt = summarise(RunStore(store.dir), 0)
    assert json.dumps(rebuilt, sort_keys=True) == json.dumps(before, sort_keys=True)
    assert "concept\\_presence@7\\#" in (tmp_path / "reports" / f"{store.run_id}.md").read_text()
