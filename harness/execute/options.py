"""Runtime-only options of a run, and its progress display."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from harness.execute.executors import Executor
from harness.judge.budget import Budget
from harness.store import default_runs_root

__all__ = ["Bars", "RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    """Runtime-only options: they change where and how fast, never what is computed."""

    runs_root: Path = field(default_factory=default_runs_root)
    reports_dir: Path = Path("reports")
    device: str | None = None  # None: the spec's model.device
    batch_size: int | None = None  # None: from a memory budget
    show_progress: bool = True
    log_to_mlflow: bool = True
    require_tracking: bool = False  # an unreachable tracking server refuses the run (else warns)
    judge_concurrency: int | None = None  # None: the spec's judge.concurrency, else 32
    judge_timeout_s: float | None = None  # None: the spec's judge.timeout_s, else 60
    judge_retries: int | None = None  # None: the spec's judge.max_retries, else 6
    judge_batch: bool = False  # use the Message Batches API (Anthropic judge)
    judge_cache: Path | None = None  # None: $HARNESS_JUDGE_CACHE or ~/.cache/harness
    max_cost_usd: float | None = None  # None: the spec's judge.max_cost_usd, else $10
    over_budget_ok: bool = False  # --yes: start although the estimate exceeds the budget
    budget: Budget | None = None  # the ledger the run's paid judges share (set by the runner)
    wait: bool = False  # another process writes the same run: wait for it (else refuse, exit 2)
    executor: Executor | None = None  # None: the local executor (cells in this process)


class Bars:
    """Progress per stage, on stderr (stdout stays for results): a tqdm bar on a terminal;
    elsewhere (CI logs, nox, a pipe) one clean line when the stage ends; nothing when off."""

    def __init__(self, enabled: bool, tty: bool | None = None) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.bars: dict[str, Any] = {}
        self.started: dict[str, tuple[float, int]] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        if not self.tty:
            first = self.started.setdefault(stage, (time.monotonic(), done))
            if done >= total:
                del self.started[stage]
                made = total - first[1]
                took = time.monotonic() - first[0]
                what = f"{made} done in {took:.1f} s" if made else "all stored already"
                print(f"{stage}: {total} items, {what}", file=sys.stderr, flush=True)
            return
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="item", leave=True)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            del self.bars[stage]  # the next study's stage of the same name gets a fresh bar

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
