"""``harness bench scale``: the Ray executor against the local one on the same toy suite.

The suite (two shipped toy specs over both toy SAEs: contrastive search + specificity, and a
sweep + ablation) runs from scratch once per executor, in this process, without MLflow. Figures:
cells per second for each; per cell, the worker's compute time and the driver's own time
(snapshot, storing the returned records, bookkeeping; judging comes after and is the same for
both executors); and the scaling estimate they imply: with W workers and N cells a run takes
about max(N × worker / W, N × driver) plus judging, so the driver saturates at worker / driver
workers.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.spec import Experiment, ToySAE

__all__ = ["bench_scale", "suite"]


def suite() -> list[Experiment]:
    """The toy suite: both shipped SAEs, two specs, cut to a few prompts per study."""
    from harness.spec import Ablation, ContrastiveSearch, SaturationClamp, Specificity
    from harness.toy.probes import BRIDGE_PROMPTS, GOLDEN_GATE, NEUTRAL_PROMPTS

    saes = (ToySAE(name="relu-256"), ToySAE(name="topk-256"))
    return [
        Experiment(
            name="scale_sweep",
            saes=saes,
            studies=(
                SaturationClamp(
                    name="sweep", feature=GOLDEN_GATE, levels=(0, 2, 5), prompts=NEUTRAL_PROMPTS
                ),
                Ablation(
                    name="ablate",
                    features=(GOLDEN_GATE,),
                    prompts=BRIDGE_PROMPTS,
                    tokens=("bridge",),
                ),
            ),
        ),
        Experiment(
            name="scale_specificity",
            saes=saes,
            studies=(
                ContrastiveSearch(
                    name="search",
                    positive=GOLDEN_GATE.positive,
                    negative=GOLDEN_GATE.negative,
                    top_k=5,
                ),
                Specificity(
                    name="specificity",
                    feature=GOLDEN_GATE,
                    bins=(0.0, 0.5),
                    n_per_bin=8,
                    description="the Golden Gate Bridge",
                ),
            ),
        ),
    ]


def _run_suite(executor: Any, root: Path) -> dict[str, Any]:
    from harness.execute.runner import RunOptions, run_experiment

    options = RunOptions(
        runs_root=root / "runs",
        reports_dir=root / "reports",
        show_progress=False,
        log_to_mlflow=False,
        executor=executor,
    )
    cells = 0
    worker_s = driver_s = 0.0
    started = time.perf_counter()
    for exp in suite():
        result = run_experiment(exp, options, say=lambda _: None)
        stats = result.store.read_json("status.json")["cells"]
        cells += stats["done"]
        worker_s += stats["worker_s"]
        driver_s += stats["driver_s"]
    wall = time.perf_counter() - started
    return {
        "cells": cells,
        "wall_s": round(wall, 2),
        "cells_per_s": round(cells / wall, 3),
        "worker_s_per_cell": round(worker_s / cells, 3),
        "driver_s_per_cell": round(driver_s / cells, 4),
    }


def bench_scale(workers: int = 2, address: str | None = None) -> dict[str, Any]:
    """The suite once on each executor (fresh stores; feature statistics cached by the first)."""
    from harness.execute.executors import LocalExecutor
    from harness.execute.ray_executor import RayExecutor

    out: dict[str, Any] = {"workers": workers}
    with tempfile.TemporaryDirectory(prefix="harness-bench-scale-") as tmp:
        root = Path(tmp)
        out["local"] = _run_suite(LocalExecutor(), root / "local")
        ray = RayExecutor(address, workers=workers, say=lambda _: None)
        began = time.perf_counter()
        try:
            ray.prepare(suite()[0], None)  # start-up: the cluster and the first model load
            out["ray_startup_s"] = round(time.perf_counter() - began, 2)
            out["ray"] = _run_suite(ray, root / "ray")
        finally:
            ray.close()
        shutil.rmtree(root, ignore_errors=True)
    local, remote = out["local"], out["ray"]
    out["speedup_vs_local"] = round(local["wall_s"] / remote["wall_s"], 3)
    driver = max(remote["driver_s_per_cell"], 1e-6)
    out["driver_overhead_ratio"] = round(driver / remote["worker_s_per_cell"], 4)
    out["workers_until_driver_bound"] = int(remote["worker_s_per_cell"] / driver)
    return out
