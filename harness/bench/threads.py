"""``harness bench threads``: one spec end to end with torch on 1 thread, on every core, and on
the number the harness picks itself (``engine/threads.py``), on a quiet machine and with a busy
loop on each core (what a shared CI or lab machine looks like).

Each timing is a fresh ``harness run`` process (import, model load, every study, report; no
MLflow) in a fresh run folder with a fresh feature-statistics cache, after one untimed warm-up
run. Figures: seconds per setting and load, the thread count each run recorded in its
provenance, and per load the automatic choice over the best of the three (1.0: it picked the
fastest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["bench_threads"]

DEFAULT_SPEC = Path("experiments/toy_specificity.py")


def _run(spec: Path, threads: int | None, work: Path) -> tuple[float, Any]:
    """Seconds for one `harness run` of ``spec`` and the threads its provenance records."""
    folder = Path(tempfile.mkdtemp(dir=work))
    env = {**os.environ, "HARNESS_STATS_CACHE": str(folder / "stats")}
    env.pop("HARNESS_THREADS", None)
    args = [sys.executable, "-m", "harness.cli", "run", str(spec.resolve()), "--quiet"]
    args += ["--no-mlflow", "--runs", str(folder / "runs"), "--reports", str(folder / "reports")]
    if threads is not None:
        args += ["--threads", str(threads)]
    began = time.perf_counter()
    done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"harness run failed ({done.returncode}): {done.stderr[-1000:]}")
    [prov] = (folder / "runs").glob("*/provenance.json")
    return took, json.loads(prov.read_text()).get("threads")


def bench_threads(
    spec: Path = DEFAULT_SPEC, loaded: bool = True, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Time ``spec`` at auto, 1 and every-core threads, quiet and (``loaded``) with a busy loop
    on each core."""
    cores = os.cpu_count() or 1
    settings: list[tuple[str, int | None]] = [("auto", None), ("1", 1)]
    if cores > 1:
        settings.append((str(cores), cores))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _run(spec, 1, work)  # warm-up: file caches, compiled kernels
        for load in ("quiet", "loaded") if loaded else ("quiet",):
            hogs = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(cores if load == "loaded" else 0)
            ]
            try:
                for label, n in settings:
                    seconds, recorded = _run(spec, n, work)
                    rows.append(
                        {
                            "load": load,
                            "threads": label,
                            "seconds": round(seconds, 2),
                            "recorded": recorded,
                        }
                    )
                    say(f"{load:<7} threads={label:<5} {seconds:6.1f} s  ({recorded})")
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
    ratios = {}
    for load in {r["load"] for r in rows}:
        mine = [r for r in rows if r["load"] == load]
        auto = next(r["seconds"] for r in mine if r["threads"] == "auto")
        ratios[load] = round(auto / min(r["seconds"] for r in mine), 3)
    return {"spec": str(spec), "cores": cores, "rows": rows, "auto_over_best": ratios}
