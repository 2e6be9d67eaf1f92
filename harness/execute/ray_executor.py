"""The Ray executor: a run's cells on long-lived actors of a Ray cluster (``--executor ray``).

One actor per GPU (``--gpus-per-worker``) or per CPU slot keeps the model and SAEs warm across
the cells, and the runs, of the same model; a free actor takes a cell of the model it holds
first. The driver stays the single writer: it hands each cell the records already stored for it
(so a half-done cell resumes per item), stores what the cell returns, marks the cell done, and
judges afterwards; workers never call the judge. A worker that dies (actor crash, node loss)
costs its in-flight cell only: the cell goes to a fresh actor, up to ``max_retries`` more times,
then is listed as failed with its reason, and the next run resumes it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, SpecError
from harness.execute.cells import QUALITY, Cell, cell_record, snapshot
from harness.execute.executors import CellJob, CellStats
from harness.execute.ray_actor import CellActor
from harness.spec import Experiment

__all__ = ["RayExecutor"]


@dataclass
class _Slot:
    """One actor as the driver sees it."""

    number: int
    handle: Any
    holds: str | None = None  # model identity of the last experiment it ran
    pid: int | None = None


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HarnessError(
            "the Ray executor needs Ray: pip install 'harness[ray]' (or 'ray[default]')"
        ) from None
    return ray


class RayExecutor:
    """Cells on actors of a Ray cluster: ``address`` None starts a local cluster (and stops it at
    :meth:`close`); ``"auto"`` or ``ray://…`` joins a running one."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        gpus_per_worker: float | None = None,
        workers: int | None = None,
        max_retries: int = 2,
        say: Any = print,
    ) -> None:
        if workers is not None and workers < 1:
            raise HarnessError(f"--workers must be at least 1, got {workers}")
        if gpus_per_worker is not None and gpus_per_worker < 0:
            raise HarnessError(f"--gpus-per-worker must be ≥ 0, got {gpus_per_worker}")
        if max_retries < 0:
            raise HarnessError(f"--cell-retries must be ≥ 0, got {max_retries}")
        self.address = address
        self.gpus_per_worker = gpus_per_worker
        self.workers = workers
        self._threads: dict[str, Any] | None = None  # one actor's torch threads (all alike)
        self.max_retries = max_retries
        self.say = say
        self._slots: list[_Slot] = []
        self._started = False
        self._owned = False
        self._remote: Any = None
        self._numbers = 0

    # ---- the cluster and its actors
    def _start(self) -> None:
        if self._started:
            return
        ray = _ray()
        import logging

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
                "configure_logging": True,
            }
            if self.address is None:
                self._owned = True
                if self.workers is not None:
                    kwargs["num_cpus"] = self.workers
                self.say("starting a local Ray cluster")
            else:
                kwargs["address"] = self.address
            import signal

            previous = signal.getsignal(signal.SIGTERM)
            ray.init(**kwargs)
            # ray.init installs a SIGTERM handler that exits at once; keep the caller's (the CLI
            # turns SIGTERM into a clean stop: run marked killed, MLflow run KILLED)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if self._owned:
                _start_reaper()
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        if self.gpus_per_worker is None:
            self.gpus_per_worker = 1.0 if gpus >= 1 else 0.0
        if self.gpus_per_worker > gpus:
            raise HarnessError(
                f"--gpus-per-worker {self.gpus_per_worker:g}: the Ray cluster has {gpus:g} GPU(s), "
                "so no actor could be placed (use 0 for CPU actors)"
            )
        if self.workers is None:
            if self.gpus_per_worker > 0:
                self.workers = max(1, int(gpus // self.gpus_per_worker))
            else:
                self.workers = max(1, int(resources.get("CPU", 1)))
        options: dict[str, Any] = {"max_restarts": 0, "max_concurrency": 1}
        if self.gpus_per_worker > 0:
            options.update(num_gpus=self.gpus_per_worker, num_cpus=1)
        else:
            options.update(num_cpus=1)
        self._remote = ray.remote(CellActor).options(**options)
        self._started = True

    def _new_slot(self, number: int | None = None) -> _Slot:
        if number is None:
            self._numbers += 1
            number = self._numbers
        return _Slot(number, self._remote.remote())

    def _slots_for(self, n_cells: int) -> list[_Slot]:
        assert self.workers is not None
        while len(self._slots) < min(self.workers, max(1, n_cells)):
            self._slots.append(self._new_slot())
        return self._slots

    def _replace(self, slot: _Slot) -> _Slot:
        ray = _ray()
        try:
            ray.kill(slot.handle, no_restart=True)
        except Exception:  # already gone
            pass
        fresh = self._new_slot(slot.number)
        self._slots[self._slots.index(slot)] = fresh
        return fresh

    # ---- the executor protocol
    def prepare(self, exp: Experiment, device: str | None) -> str:
        """Start the cluster, load ``exp`` on one actor and check every study there."""
        ray = _ray()
        self._start()
        slot = self._slots_for(1)[0]
        try:
            result = ray.get(slot.handle.prepare.remote(exp, device))
        except ray.exceptions.RayActorError as exc:
            self._replace(slot)
            raise HarnessError(f"the Ray worker died while loading the model: {exc}") from None
        if "error" in result:
            if "spec_error" in result:
                message, field = result["spec_error"]
                raise SpecError(message, field=field)
            raise HarnessError(result["error"])
        from harness.execute.worker import model_identity

        slot.holds, slot.pid = model_identity(exp), result["pid"]
        self._threads = result.get("threads")
        for line in result["messages"]:
            self.say(f"[worker {slot.number}] {line}")
        return str(result["device"])

    def compute(self, job: CellJob) -> CellStats:
        """Every cell of ``job`` on the actors; the driver stores each result as it arrives."""
        if not job.cells:
            return CellStats(self.name)  # everything is stored: no cluster, no model
        ray = _ray()
        self._start()
        from harness.execute.worker import model_identity

        want = model_identity(job.exp)
        slots = self._slots_for(len(job.cells))
        stats = CellStats(self.name, workers=len(slots), threads=self._threads)
        began = time.monotonic()
        provenance = job.store.read_json("provenance.json")
        api_judge = not job.exp.judge.is_offline()
        pending: deque[Cell] = deque(job.cells)
        attempts: dict[str, int] = {}
        running: dict[Any, tuple[Cell, _Slot, float]] = {}
        total = len(job.cells)
        try:
            while pending or running:
                busy = {id(s) for _, s, _ in running.values()}
                idle = [s for s in self._slots if id(s) not in busy]
                idle.sort(key=lambda s: s.holds != want)  # model affinity: warm actors first
                for slot in idle:
                    cell = _next_cell(pending, [c for c, _, _ in running.values()])
                    if cell is None:
                        break
                    t0 = time.monotonic()
                    stored = snapshot(job.store.records(), cell)
                    ref = slot.handle.run_cell.remote(
                        job.exp,
                        job.device,
                        job.batch_size,
                        job.store.run_id,
                        cell,
                        stored,
                        provenance,
                        api_judge,
                    )
                    slot.holds = want
                    running[ref] = (cell, slot, t0)
                    stats.driver_s += time.monotonic() - t0
                if not running:
                    continue
                ready, _ = ray.wait(list(running), num_returns=1, timeout=30.0)
                for ref in ready:
                    cell, slot, t0 = running.pop(ref)
                    self._finish(job, ref, cell, slot, t0, stats, attempts, pending)
                    job.say(
                        f"cells {stats.done}/{total} done · {len(running)} running · "
                        f"{len(stats.failed)} failed · {stats.retried} retried"
                    )
        except BaseException:
            for ref in running:  # Ctrl-C, SIGTERM, a driver error: stop what is in flight
                try:
                    ray.cancel(ref, force=True)
                except Exception:
                    pass
            for slot in self._slots:  # their cells were cancelled: start afresh if reused
                try:
                    ray.kill(slot.handle, no_restart=True)
                except Exception:
                    pass
            self._slots = []
            raise
        stats.wall_s = time.monotonic() - began
        return stats

    def _finish(
        self,
        job: CellJob,
        ref: Any,
        cell: Cell,
        slot: _Slot,
        t0: float,
        stats: CellStats,
        attempts: dict[str, int],
        pending: deque[Cell],
    ) -> None:
        ray = _ray()
        took = time.monotonic() - t0
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as exc:  # the worker died: the cell is retried
            attempts[cell.key] = attempts.get(cell.key, 0) + 1
            fresh = self._replace(slot)
            reason = _short(exc)
            if attempts[cell.key] <= self.max_retries:
                stats.retried += 1
                pending.appendleft(cell)
                job.say(
                    f"[worker {slot.number}] died during {cell.name} ({reason}); retry "
                    f"{attempts[cell.key]} of {self.max_retries} on a fresh actor"
                )
            else:
                stats.failed.append((cell.name, f"worker died {attempts[cell.key]}×: {reason}"))
            fresh.holds = None
            return
        except ray.exceptions.RayTaskError as exc:  # an error in the cell itself: not retried
            stats.failed.append((cell.name, _short(exc)))
            return
        for line in result.get("messages", []):
            job.say(f"[worker {slot.number}] {line}")
        if "spec_error" in result:  # not the worker's fault: the run stops with one line
            message, field = result["spec_error"]
            raise SpecError(message, field=field)
        slot.pid = result.get("pid", slot.pid)
        t1 = time.monotonic()
        if "describe" in result:  # the driver's judge describes; the cell runs again
            from harness.judge.service import describe_with

            need = result["describe"]
            judge = job.study_judges[need["rubric"]]
            job.store.append([describe_with(judge, need["record"], need["examples"])])
            pending.appendleft(cell)
        else:
            job.store.append(result["records"])
            job.store.append([cell_record(cell)])
            stats.done += 1
            stats.worker_s += result["seconds"]
            job.say(
                f"[worker {slot.number}] {cell.name}: {len(result['records'])} records in "
                f"{took:.1f} s"
            )
        stats.driver_s += time.monotonic() - t1

    def close(self) -> None:
        """Stop the actors (and the local cluster this executor started)."""
        if not self._started:
            return
        ray = _ray()
        for slot in self._slots:
            try:
                ray.kill(slot.handle, no_restart=True)
            except Exception:
                pass
        self._slots = []
        if self._owned:
            ray.shutdown()
        self._started = False


def _start_reaper() -> None:
    """The watchdog that stops this cluster's agents if the driver is SIGKILLed
    (:mod:`harness.execute.ray_reaper`); Linux only, and only for a cluster this process owns."""
    import subprocess
    import sys

    from harness.execute import ray_reaper
    from harness.execute.ray_reaper import descendants

    if not Path("/proc").is_dir():
        return

    def name(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return ""

    raylets = [pid for pid in descendants(os.getpid()) if name(pid) == "raylet"]
    if raylets:
        subprocess.Popen(
            # the file itself, in isolated mode: only the standard library to import, so it
            # watches within milliseconds (importing the harness package takes seconds)
            [sys.executable, "-I", ray_reaper.__file__, str(os.getpid()), str(raylets[0])],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a kill of the driver's process group spares it
        )


def _next_cell(pending: deque[Cell], running: list[Cell]) -> Cell | None:
    """The first pending cell that may start now (taken out of ``pending``): an SAE's study
    cells wait for its quality cell, which the fit gate reads before any intervention."""
    waiting = {c.sae for c in [*pending, *running] if c.study == QUALITY}
    for cell in pending:
        if cell.study == QUALITY or cell.sae not in waiting:
            pending.remove(cell)
            return cell
    return None


def _short(exc: BaseException) -> str:
    """One line for an error from Ray: the cell's own exception when there is one (Ray's
    wrappers start with a header and run to pages of traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        text = f"{type(cause).__name__}: {cause}".strip().splitlines()
    else:
        text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
