"""The Ray executor on a real local Ray cluster (two CPU slots, two actors): the same records,
summaries and reports as the local executor; a worker killed mid-cell costs only a retry; a Ray
run logged to a real `mlflow server` on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.mlflow_server import mlflow_server

pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'harness[ray]'")

RAY = ["--executor", "ray", "--workers", "2"]


def _spec(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(
        "from harness import Experiment, SaturationClamp, ToySAE\n"
        "from harness.spec import Ablation, ContrastiveSearch, Specificity\n"
        "from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS, BRIDGE_PROMPTS\n"
        "def spec():\n"
        f"    return Experiment(name={name!r}, tags=('nightly',),\n"
        "        saes=(ToySAE(name='relu-256'), ToySAE(name='topk-256')),\n"
        f"        studies=({body}))\n"
    )
    return path


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two specs over both toy SAEs: a sweep with an ablation; a search with specificity."""
    folder = tmp_path_factory.mktemp("suite")
    _spec(
        folder,
        "ray_sweep",
        "SaturationClamp(name='sweep', feature=GOLDEN_GATE, levels=(0, 5), "
        "prompts=NEUTRAL_PROMPTS[:4]), Ablation(name='ablate', features=(GOLDEN_GATE,), "
        "prompts=BRIDGE_PROMPTS[:4], tokens=('bridge',)),",
    )
    _spec(
        folder,
        "ray_specificity",
        "ContrastiveSearch(name='search', positive=GOLDEN_GATE.positive, "
        "negative=GOLDEN_GATE.negative, top_k=5), Specificity(name='spec', feature=GOLDEN_GATE, "
        "bins=(0.0, 0.5), n_per_bin=3, description='the Golden Gate Bridge'),",
    )
    return folder


def _cli(args: list[str], cwd: Path, timeout: float = 600, **env: str) -> str:
    """Run ``harness ARGS`` in a fresh process (its own Ray cluster); it must succeed."""
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def _records(run_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for line in (run_dir / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        assert (r["kind"], r["key"]) not in out, f"duplicate {r['kind']} {r['key']}"
        for volatile in ("latency_s",):
            r.pop(volatile, None)
        out[(r["kind"], r["key"])] = r
    return out


def _runs(root: Path) -> dict[str, Path]:
    """Experiment name → run directory, for the runs under ``root``."""
    return {p.parent.name.rsplit("-", 1)[0]: p.parent for p in root.rglob("records.jsonl")}


@pytest.fixture(scope="module")
def local_suite(suite: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("local")
    _cli(["nightly", str(suite), "--runs", "runs", "--reports", "reports", "--no-mlflow"], work)
    return work


def test_a_ray_suite_stores_what_the_local_executor_stores(
    suite: Path, local_suite: Path, tmp_path: Path
) -> None:
    log = _cli(
        ["nightly", str(suite), "--runs", "runs", "--reports", "reports", "--no-mlflow", *RAY],
        tmp_path,
    )
    assert "starting a local Ray cluster" in log
    local, ray = _runs(local_suite / "runs"), _runs(tmp_path / "runs")
    assert sorted(local) == sorted(ray) == ["ray_specificity", "ray_sweep"]
    for name in local:
        a, b = _records(local[name]), _records(ray[name])
        assert a.keys() == b.keys(), name
        assert a == b, name
        summary = json.loads((local[name] / "summary.json").read_text())
        assert summary == json.loads((ray[name] / "summary.json").read_text())
        status = json.loads((ray[name] / "status.json").read_text())
        assert status["cells"]["executor"] == "ray"
        assert status["cells"]["failed"] == [] and status["cells"]["workers"] == 2
        # one cell per SAE × study and per SAE's quality measurement, each done once
        assert sum(k == "cell" for k, _ in b) == 2 * 3 == status["cells"]["done"]
        # each night's reports are in that night's folder
        report = next((local_suite / "reports").rglob(f"{local[name].name}.md")).read_text()
        assert report == next((tmp_path / "reports").rglob(f"{ray[name].name}.md")).read_text()


def test_a_worker_killed_mid_cell_costs_one_retry(
    suite: Path, local_suite: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    log = _cli(
        ["run", str(suite / "ray_sweep.py"), "--runs", "runs", "--no-mlflow", "--quiet", *RAY],
        tmp_path,
        HARNESS_RAY_FAULT_KILL=str(marker),
    )
    assert marker.exists(), "the fault hook never fired"
    assert "retry 1 of 2" in log
    run = _runs(tmp_path / "runs")["ray_sweep"]
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished"
    assert status["cells"]["retried"] == 1 and status["cells"]["failed"] == []
    assert _records(run) == _records(_runs(local_suite / "runs")["ray_sweep"])


def test_a_ray_run_logs_to_a_real_mlflow_server(suite: Path, tmp_path: Path) -> None:
    _log_through_a_server(suite, tmp_path, f"sqlite:///{tmp_path / 'server.db'}")


def test_a_ray_run_logs_to_an_mlflow_server_on_postgresql(suite: Path, tmp_path: Path) -> None:
    uri = os.environ.get("HARNESS_TEST_POSTGRES_URI")
    if not uri:
        pytest.skip(
            "opt-in: set HARNESS_TEST_POSTGRES_URI to an empty PostgreSQL database "
            "(postgresql+psycopg2://USER@HOST:PORT/DB)"
        )
    pytest.importorskip("psycopg2", reason="the server's PostgreSQL driver: psycopg2-binary")
    _log_through_a_server(suite, tmp_path, uri)


def _log_through_a_server(suite: Path, tmp_path: Path, backend: str) -> None:
    """Start ``mlflow server`` on loopback over ``backend``, log a Ray run to it, read it back."""
    import mlflow

    with mlflow_server(backend, tmp_path) as uri:
        try:
            _cli(
                ["run", str(suite / "ray_sweep.py"), "--runs", "runs", "--quiet", *RAY],
                tmp_path,
                MLFLOW_TRACKING_URI=uri,
            )
            mlflow.set_tracking_uri(uri)
            runs = mlflow.search_runs(experiment_names=["ray_sweep"], output_format="list")
            parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
            children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
            assert [p.info.status for p in parents] == ["FINISHED"]
            assert len(children) == 2 * 3  # per SAE: its quality and the two studies
            assert any(k.startswith("concept_score") for c in children for k in c.data.metrics)
            client = mlflow.MlflowClient()
            artifacts = client.list_artifacts(parents[0].info.run_id, "report")
            assert any(a.path.endswith(".md") for a in artifacts)  # uploaded through the server
        finally:
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def test_a_ray_run_stopped_by_sigterm_ends_killed_and_resumes(suite: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    args = ["run", str(suite / "ray_sweep.py"), "--runs", "runs", "--quiet", *RAY]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the first cell is stored: the others are in flight
        if line.startswith("cells 1/"):
            break
        assert time.monotonic() < deadline, "no cell finished"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    run = _runs(tmp_path / "runs")["ray_sweep"]
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "killed"
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    try:
        runs = mlflow.search_runs(experiment_names=["ray_sweep"], output_format="list")
        parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert [p.info.status for p in parents] == ["KILLED"]
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    done_before = sum(k == "cell" for k, _ in _records(run))
    assert 1 <= done_before < 6
    _cli([*args[: -len(RAY)], "--no-mlflow"], tmp_path)  # resumed by the local executor
    after = json.loads((run / "status.json").read_text())
    assert after["status"] == "finished" and after["cells"]["done"] == 6 - done_before
    # finished with every cell stored: the Ray executor starts no cluster and loads no model
    records = (run / "records.jsonl").read_bytes()
    out = _cli([*args, "--no-mlflow"], tmp_path)
    assert "[worker" not in out and "model and" not in out, out
    assert (run / "records.jsonl").read_bytes() == records


def test_a_sigkilled_driver_leaves_no_ray_process_behind(suite: Path, tmp_path: Path) -> None:
    """Ray's dashboard and runtime-env agents outlive a SIGKILLed driver by about 60 s on their
    own; the executor's watchdog (harness.execute.ray_reaper) stops them within seconds."""
    from harness.execute.ray_reaper import descendants

    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(suite / "ray_sweep.py"),
            "--runs",
            "runs",
            "--no-mlflow",
            "--quiet",
            *RAY,
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def agents() -> dict[int, str]:
        names = {}
        for pid in descendants(driver.pid):
            try:
                names[pid] = Path(f"/proc/{pid}/cmdline").read_text()
            except OSError:
                pass
        return {p: n for p, n in names.items() if "Agent" in n}

    deadline = time.monotonic() + 300
    while len(agents()) < 2:  # the cluster is up with its dashboard and runtime-env agents
        assert driver.poll() is None, "the run ended before its cluster was seen"
        assert time.monotonic() < deadline, "no Ray agents appeared"
        time.sleep(0.2)
    cluster = descendants(driver.pid)
    time.sleep(2)  # the watchdog notes them once a second
    cluster.update(descendants(driver.pid))
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    killed = time.monotonic()

    def alive() -> list[int]:
        from harness.execute.ray_reaper import _stat

        return [p for p, start in cluster.items() if (s := _stat(p)) is not None and s[1] == start]

    while alive() and time.monotonic() - killed < 30:
        time.sleep(0.2)
    left = {p: Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ")[:120] for p in alive()}
    assert not left, f"still running {time.monotonic() - killed:.0f} s after the kill: {left}"
