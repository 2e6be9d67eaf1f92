"""MLflow is a view: a tracking store that is down at the start or dies mid-run costs one warning
line, never the run; `harness log` repairs the view later; one active parent per run directory
after any sequence of run, log and rescore; the writer lock is taken before anything heavy."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import mlflow
import pytest

from harness.cli import main
from harness.store import RunStore
from tests.mlflow_server import free_port, start_server
from tests.test_robustness import _cli, _poll, _spec


def _quality_spec(tmp_path: Path) -> Path:
    """The robustness spec with SAE quality on: long enough to kill a server while it computes."""
    spec = _spec(tmp_path, "sae_quality=SAEQualityEval(n_sequences=256),")
    spec.write_text(
        spec.read_text()
        .replace("sae_quality=None,\n", "")
        .replace(
            "from harness import Experiment,",
            "from harness.spec import Experiment, SAEQualityEval,",
        )
    )
    return spec


def _server(backend: str, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    return start_server(backend, workdir, port)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    import os

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def _parents(client: mlflow.MlflowClient, run_id: str, run_dir: Path) -> list[mlflow.entities.Run]:
    """The active (not deleted) parent runs of one harness run directory."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    return [
        r
        for r in client.search_runs(
            experiments, filter_string=f"tags.`harness.run_id` = '{run_id}'"
        )
        if "mlflow.parentRunId" not in r.data.tags
        and r.data.tags.get("harness.run_dir") == str(run_dir.resolve())
    ]


def test_a_tracking_server_killed_mid_run_costs_one_warning_and_log_repairs_the_view(
    tmp_path: Path,
) -> None:
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    port = free_port()
    server = _server(backend, tmp_path, port)
    uri = f"http://127.0.0.1:{port}"
    spec = _quality_spec(tmp_path)
    try:
        proc = _cli(["run", str(spec), "--quiet"], tmp_path, MLFLOW_TRACKING_URI=uri)
        runs = tmp_path / "runs"

        def parent_open() -> bool:
            for p in runs.glob("robust-*/status.json"):
                try:
                    return bool(json.loads(p.read_text()).get("mlflow_run_id"))
                except ValueError:
                    return False
            return False

        _poll(parent_open, timeout=300)
    finally:
        _kill(server)  # the server dies while the run computes
    out, err = proc.communicate(timeout=600)
    ended = time.time()
    run_dir = next(runs.glob("robust-*"))
    store = RunStore(run_dir)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    warnings = [line for line in err.splitlines() if "MLflow unreachable" in line]
    assert len(warnings) == 1, err
    assert f"at {uri}:" in warnings[0] and f"harness log runs/{run_dir.name}" in warnings[0]
    assert len(err.strip().splitlines()) == 1, err  # nothing else: no retry chatter
    last_result = max((run_dir / n).stat().st_mtime for n in ("records.jsonl", "summary.json"))
    assert ended - last_result < 30, f"{ended - last_result:.1f} s after the last result"
    status = store.status()
    assert status["status"] == "finished" and "MLflow unreachable" in status["tracking_error"]
    assert store.read_json("summary.json") and list(store.judgements())
    assert "mlflow run:" not in out

    server = _server(backend, tmp_path, port)  # back again: the view is written from the store
    try:
        log = _cli(["log", store.run_id], tmp_path, MLFLOW_TRACKING_URI=uri)
        _, err = log.communicate(timeout=600)
        assert log.returncode == 0, err
        client = mlflow.MlflowClient(tracking_uri=uri)
        parents = _parents(client, store.run_id, run_dir)
        assert [p.info.status for p in parents] == ["FINISHED"]
        experiments = [e.experiment_id for e in client.search_experiments()]
        nested = client.search_runs(
            experiments, filter_string=f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'"
        )
        groups = {(r["sae"], r["study"]) for r in store.read_json("summary.json")}
        assert {(r.data.tags["sae"], r.data.tags["study"]) for r in nested} == groups
        assert all(r.data.metrics for r in nested)
        assert RunStore(run_dir).status()["mlflow_run_id"] == parents[0].info.run_id
    finally:
        _kill(server)


def test_no_tracking_server_at_the_start_is_one_warning_and_the_run_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    spec = _spec(tmp_path)
    began = time.monotonic()
    assert main(["run", str(spec), "--quiet", "--require-tracking"]) == 2
    refused_in = time.monotonic() - began
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and f"MLflow unreachable at {uri}" in err[0]
        and "--require-tracking" in err[0]
    )
    assert not list((tmp_path / "runs").glob("*/records.jsonl")), "refused before compute"
    assert refused_in < 60

    assert main(["run", str(spec), "--quiet"]) == 0
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "harness: warning: MLflow unreachable at" in err[0], err
    assert "mlflow run:" not in captured.out
    store = RunStore.open("latest", Path("runs"))
    assert store.status()["status"] == "finished" and store.status()["tracking_error"]
    assert main(["log", store.run_id]) == 2  # still down: one line, nothing logged
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing logged" in err[0], err


def test_log_of_a_live_run_is_refused_and_one_parent_stays_after_any_sequence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    spec = _quality_spec(tmp_path)
    live = _cli(["run", str(spec), "--quiet"], tmp_path, MLFLOW_TRACKING_URI=uri)
    runs = tmp_path / "runs"
    _poll(
        lambda: any(RunStore(p.parent).is_live() for p in runs.glob("robust-*/spec.json")),
        timeout=300,
    )
    run_dir = next(runs.glob("robust-*"))
    refused = 0
    for command in (["log", run_dir.name], ["rescore", run_dir.name]):
        if not RunStore(run_dir).is_live():
            break  # it finished first: the refusal is checked only while it is live
        assert main(command) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("in progress" in err[0] or "being written" in err[0]), err
        refused += 1
    assert refused, "the run ended before log could be tried on it"
    _, err = live.communicate(timeout=600)
    assert live.returncode == 0, err
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert [p.info.status for p in _parents(client, run_dir.name, run_dir)] == ["FINISHED"]

    steps = {
        "run": ["run", str(spec), "--quiet"],
        "log": ["log", run_dir.name],
        "rescore": ["rescore", run_dir.name, "--judge", "offline-keyword"],
    }
    rng = random.Random(7)
    sequence = [rng.choice(sorted(steps)) for _ in range(6)]
    for step in sequence:
        assert main(steps[step]) == 0, step
        capsys.readouterr()
        parents = _parents(client, run_dir.name, run_dir)
        assert [p.info.status for p in parents] == ["FINISHED"], (sequence, step)


def test_the_writer_lock_comes_before_judges_and_executors_and_probes_never_block_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.execute import runner
    from harness.spec.loading import load_spec

    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path)
    folder = RunStore.dir_for(load_spec(spec), Path("runs"))

    def no(*_a: object, **_k: object) -> None:
        raise AssertionError("set up before the lock was checked")

    with RunStore(folder).writer_lock():
        monkeypatch.setattr(runner, "make_judges", no)
        assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 2
        err = capsys.readouterr().err
        assert "being written by pid" in err and err.count("\n") == 1
        assert RunStore(folder).is_live()
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert not RunStore(folder).is_live()

    # a dead writer's line (SIGKILL leaves it) is neither live nor reported
    (folder / ".lock").write_text("999999999 12345 " + __import__("socket").gethostname())
    assert not RunStore(folder).is_live()

    stop = threading.Event()
    probes = {"n": 0}

    def probe() -> None:  # list/show-style liveness probes, as fast as they can go
        while not stop.is_set():
            RunStore(folder).is_live()
            RunStore(folder).status()
            probes["n"] += 1

    worker = threading.Thread(target=probe)
    worker.start()
    try:
        assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    finally:
        stop.set()
        worker.join(timeout=60)
    assert probes["n"] > 10
    assert not RunStore(folder).is_live()
