"""Executors: who computes a run's cells. ``local`` (the default) computes them in this process;
``ray`` (:mod:`harness.execute.ray_executor`) on the actors of a Ray cluster.

Either way the driver (this process) plans the cells, skips those already stored, writes every
record, judges, and builds the summary, the report and the MLflow view.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.execute.cells import Cell, cell_record
from harness.spec import Experiment
from harness.store import RunStore

__all__ = ["CellJob", "CellStats", "Executor", "LocalExecutor"]


@dataclass
class CellJob:
    """The cells of one run still to compute, with what computing them needs."""

    exp: Experiment
    store: RunStore
    cells: list[Cell]
    device: str
    batch_size: int | None
    progress: Callable[[str, int, int], None]
    say: Callable[[str], None]
    judges: list[Any]  # the local executor judges as it goes; remote workers never judge
    study_judges: dict[str, Any]
    judge_batch: bool = False


@dataclass
class CellStats:
    """What an executor did: counts, the failed cells with their reasons, and where time went
    (``driver_s``: the driver's own work per cell: snapshots, appends, bookkeeping)."""

    executor: str
    done: int = 0
    retried: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    worker_s: float = 0.0
    driver_s: float = 0.0
    wall_s: float = 0.0
    workers: int = 1
    judged: set[str] = field(default_factory=set)  # keys of the cells judged while computed
    threads: dict[str, Any] | None = None  # torch's intra-op threads per worker, and why

    def as_json(self) -> dict[str, Any]:
        return {
            "executor": self.executor,
            "done": self.done,
            "retried": self.retried,
            "failed": [{"cell": c, "reason": r} for c, r in self.failed],
            "worker_s": round(self.worker_s, 3),
            "driver_s": round(self.driver_s, 3),
            "wall_s": round(self.wall_s, 3),
            "workers": self.workers,
            "threads": self.threads,
        }


class Executor(Protocol):
    name: str

    def prepare(self, exp: Experiment, device: str | None) -> str:
        """Get ready to compute ``exp`` (a remote executor loads and checks it on a worker);
        returns the device its cells run on."""
        ...

    def compute(self, job: CellJob) -> CellStats:
        """Compute every cell of ``job`` into its store (a failed cell is listed, not raised)."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Cells one after another in this process, on one warm model."""

    name = "local"

    def prepare(self, exp: Experiment, device: str | None) -> str:
        from harness.engine.backend import resolve_device

        return resolve_device(device or exp.model.device)

    def compute(self, job: CellJob) -> CellStats:
        from harness.execute.worker import Warm

        stats = CellStats(self.name)
        if not job.cells:
            return stats  # everything is stored: no model to load
        started = time.monotonic()
        warm = Warm(job.exp, job.device, job.say)
        stats.threads = warm.threads.as_json()
        contexts = {
            label: warm.context(
                job.exp,
                label,
                job.store,
                job.progress,
                job.batch_size,
                judges=job.judges,
                study_judges=job.study_judges,
                judge_batch=job.judge_batch,
            )
            for label in warm.saes
        }
        warm.check(job.exp, contexts)  # every check before the first generation
        for cell in job.cells:
            warm.run_cell(job.exp, cell, contexts[cell.sae])
            job.store.append([cell_record(cell)])
            stats.judged.add(cell.key)
            stats.done += 1
        stats.wall_s = stats.worker_s = time.monotonic() - started
        return stats

    def close(self) -> None:
        pass
