"""Rule 5: SIGKILL at a random point loses only unfinished items; a resume redoes nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.execute.plan import plan
from harness.spec.loading import load_spec
from harness.store import RunStore
from tests.conftest import REPO

DEMO = REPO / "experiments" / "toy_golden_gate.py"


def _run(root: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "harness.cli",
        "run",
        str(DEMO),
        "--quiet",
        "--no-mlflow",
        "--batch-size",
        "16",
        "--runs",
        str(root / "runs"),
        "--reports",
        str(root / "reports"),
        *extra,
    ]
    return subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _content(store: RunStore) -> dict[str, object]:
    out: dict[str, object] = {}
    for r in store.records():
        out[r["key"]] = r.get("continuation", r.get("score", r.get("feature")))
    return out


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    exp = load_spec(DEMO)
    rubrics = 1 + len(exp.judge.extra_rubrics)
    # per generation: itself, one judgement per rubric, one measure record; next-token records
    # (sweep: 5 levels × 24 prompts; ablation 16 prompts; amplify 24); one feature record a study;
    # one top-features record per prompt of each study (24 + 16 + 24); SAE quality once per SAE;
    # one cell record per SAE × study and per SAE's quality measurement
    # (the ablations' random-feature controls: next-token records on their 8 and 16 target
    # prompts, 2 draws each)
    total = (
        len(plan(exp).items) * (2 + rubrics)
        + (5 * 24 + 16 + 24)
        + (8 + 16) * 2
        + len(exp.studies)
        + (24 + 16 + 24)
        + len(exp.saes)
        + len(exp.saes) * (len(exp.studies) + 1)
        + 4  # the sweep's read-back ratio at each non-zero level
    )
    # anywhere in the first 70%: the last study's measures and judgements (~250 records) land in
    # a few large appends, so a later kill point can come after the run has already finished
    kill_after = random.Random(os.getpid()).randint(2, int(total * 0.7))
    killed = tmp_path / "killed"
    killed.mkdir()
    proc = _run(killed)
    records: Path | None = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((killed / "runs").glob("*/records.jsonl"))
        if found and _lines(found[0]) >= kill_after:
            records = found[0]
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert records is not None, f"run ended before {kill_after} records"
    before = _lines(records)
    assert before < total, "the kill came too late to test anything"

    assert _run(killed).wait() == 0  # resume
    resumed = RunStore(records.parent)
    keys = [r["key"] for r in resumed.records()]
    assert len(keys) == len(set(keys)) == total  # nothing redone, nothing missing
    assert json.loads((records.parent / "status.json").read_text())["status"] == "finished"

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert _run(fresh).wait() == 0
    [fresh_dir] = list((fresh / "runs").glob("*/"))
    assert _content(resumed) == _content(RunStore(fresh_dir))
    assert json.loads((records.parent / "summary.json").read_text()) == json.loads(
        (fresh_dir / "summary.json").read_text()
    )
