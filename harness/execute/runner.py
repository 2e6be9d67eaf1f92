"""Run an experiment end to end: validate, load, run studies into the store, then the views.

Data flows one way: spec → store records → summary → report and MLflow. Runtime-only options
(device, batch size, where things are written) live in :class:`RunOptions` and never change an
item's identity.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.analysis.aggregate import summarise
from harness.errors import HarnessError, TrackingError
from harness.execute.executors import Executor
from harness.execute.judging import (
    check_unscored,
    judge_cells,
    make_judge,
    make_judges,
    make_study_judges,
    rescore,
)
from harness.execute.options import Bars, RunOptions
from harness.judge.base import Judge
from harness.judge.budget import BudgetReached
from harness.spec import Experiment, PretrainedModel
from harness.spec.validate import validate_static
from harness.store import RunStore

__all__ = [
    "RunOptions",
    "RunResult",
    "make_judge",
    "make_judges",
    "rescore",
    "run_experiment",
]


@dataclass(frozen=True)
class RunResult:
    """Where a finished run's outputs are."""

    store: RunStore
    summary: list[dict[str, Any]]
    report_path: Path
    mlflow_run_id: str | None


def _say(text: str) -> None:
    print(text, flush=True)  # progress lines reach a pipe (CI logs, a waiting peer) at once


def run_experiment(
    exp: Experiment, options: RunOptions, say: Callable[[str], None] = _say
) -> RunResult:
    """Run (or resume) every study of ``exp`` on every SAE, then write summary, report, MLflow."""
    validate_static(exp)  # every spec error before any model code is imported
    # the writer lock first: a second run of a locked spec is refused for what `validate` costs,
    # before a judge, a cluster or a model is set up
    with RunStore(RunStore.dir_for(exp, options.runs_root)).writer_lock(options.wait, say):
        folder = RunStore.dir_for(exp, options.runs_root)
        unreachable_line = _tracking_problem(options, folder) if options.log_to_mlflow else None
        tracking = options.log_to_mlflow and unreachable_line is None
        options = _with_budget(exp, options, say)
        judges = make_judges(exp.judge, options)
        from harness.execute.executors import LocalExecutor

        executor = options.executor or LocalExecutor()
        # a remote executor checks the spec on a worker (and loads the model there), unless the
        # run is finished with every cell stored: then no model is needed, and no cluster either
        device = _finished_device(exp, options.runs_root) or executor.prepare(exp, options.device)
        store = RunStore.for_experiment(exp, options.runs_root)
        store.remove_stale_temp_files()
        moved = store.set_aside_damaged()
        if moved:
            say(
                f"set {moved} damaged record line(s) aside in {store.dir}/records.damaged.jsonl; "
                "their items are redone"
            )
        # holding the lock, a status still "running" was left by a process that died
        previous = store.read_json("status.json") if (store.dir / "status.json").exists() else {}
        if previous.get("status") == "running" and tracking:
            from harness.views.tracking import close_stale_run

            if close_stale_run(previous):
                say(
                    f"the previous attempt's MLflow run {previous['mlflow_run_id']} was left "
                    "RUNNING by a process that died; marked KILLED"
                )
        run_options = options if tracking else replace(options, log_to_mlflow=False)
        return _run_locked(
            exp, run_options, executor, store, judges, device, say, bool(moved), unreachable_line
        )


def _with_budget(exp: Experiment, options: RunOptions, say: Callable[[str], None]) -> RunOptions:
    """A paid judge's budget: the plan's estimate of the calls still to make (items already
    scored in this run directory are never paid again) is printed, and refused (exit 2, before
    compute) when above the limit unless ``over_budget_ok``; the options then carry the ledger
    the judges share."""
    if exp.judge.is_offline():
        return options
    from harness.execute.plan import plan
    from harness.judge.anthropic_judge import estimate_cost
    from harness.judge.budget import DEFAULT_MAX_COST_USD, Budget, OverBudget

    limit = next(
        x
        for x in (options.max_cost_usd, exp.judge.max_cost_usd, DEFAULT_MAX_COST_USD)
        if x is not None
    )
    if limit < 0:
        raise HarnessError(f"--max-cost must be ≥ 0, got {limit}")
    calls = plan(exp).totals()["judge_calls"]
    folder = RunStore.dir_for(exp, options.runs_root)
    if (folder / "spec.json").exists() and (folder / "provenance.json").exists():
        scored = sum(1 for r in RunStore(folder).records("judgement") if r["score"] is not None)
        calls = max(0, calls - scored)
    per_call = estimate_cost(exp.judge.model, 1)
    estimate = calls * per_call
    line = (
        f"judge budget: about {calls} call(s) to make, ~{calls * 380:,} tokens, "
        f"${estimate:.2f} with {exp.judge.model}; limit ${limit:.2f}"
    )
    if estimate > limit and not options.over_budget_ok:
        raise OverBudget(
            f"{line}: over the limit, refused before any compute; raise it with --max-cost USD "
            "(or JudgeSettings(max_cost_usd=...)), or pass --yes to start anyway and stop "
            "when the spend reaches it"
        )
    say(line)
    return replace(options, budget=Budget(limit, per_call))


def _tracking_problem(options: RunOptions, folder: Path) -> str | None:
    """None when the tracking store answers (a server is asked in seconds, before compute);
    else the one warning line, printed (the run goes on without its MLflow view), or, with
    ``require_tracking``, a one-line refusal."""
    import mlflow

    from harness.views.tracking import tracking_problem, unreachable

    problem = tracking_problem()
    if problem is None:
        return None
    line = unreachable(mlflow.get_tracking_uri(), problem, folder)
    if options.require_tracking:
        raise TrackingError(f"{line.split('; results')[0]}; refusing to run (--require-tracking)")
    print(f"harness: warning: {line}", file=sys.stderr, flush=True)
    return line


def _finished_device(exp: Experiment, root: Path) -> str | None:
    """The device a finished run of ``exp`` computed on, when every one of its cells is stored
    (a run to resume, or with damaged lines, answers None and is prepared as usual)."""
    from harness.analysis.quality import quality_measurable
    from harness.execute.cells import plan_cells

    folder = RunStore.dir_for(exp, root)
    if not (folder / "status.json").exists() or not (folder / "provenance.json").exists():
        return None
    store = RunStore(folder)
    try:
        if store.read_json("status.json").get("status") != "finished":
            return None
        done = store.done_keys("cell")
        device = store.read_json("provenance.json").get("device")
    except (OSError, ValueError, HarnessError):  # e.g. a damaged line: set aside under the lock
        return None
    cells = plan_cells(exp, quality_measurable(exp))
    return str(device) if device and all(c.key in done for c in cells) else None


def _run_locked(
    exp: Experiment,
    options: RunOptions,
    executor: Executor,
    store: RunStore,
    judges: list[Judge],
    device: str,
    say: Callable[[str], None],
    damaged: bool = False,
    tracking_error: str | None = None,
) -> RunResult:
    """The body of :func:`run_experiment`, holding the run directory's writer lock."""
    from harness.analysis.quality import QUALITY_NEEDS_CORPUS, quality_measurable
    from harness.execute.cells import plan_cells
    from harness.execute.executors import CellJob
    from harness.execute.provenance import collect_provenance
    from harness.views.report.markdown import write_report
    from harness.views.tracking import ParentView, run_tags

    judge = judges[0]
    provenance = collect_provenance(device, judge.name, judge.rubric.ident)
    provenance["dtype"] = getattr(exp.model, "dtype", "float32")
    try:  # the last computing session's threads stay until another session computes
        earlier = store.read_json("provenance.json").get("threads")
    except (OSError, ValueError, HarnessError):
        earlier = None
    if earlier is not None:
        provenance["threads"] = earlier
    if isinstance(exp.model, PretrainedModel):  # the loading rule the worker applies, and why
        from harness.engine.preflight import preflight

        provenance["model_loading"] = preflight(exp, device).as_json()
    provenance["rubrics"] = {j.rubric.name: j.rubric.ident for j in judges}
    study_judges = make_study_judges(exp, exp.judge, options)
    if study_judges:
        provenance["study_rubrics"] = {n: j.rubric.ident for n, j in study_judges.items()}
    # the rubric texts as judged: views rebuilt later never read today's rubric files
    provenance["rubric_texts"] = {
        j.rubric.ident: j.rubric.text for j in [*judges, *study_judges.values()]
    }
    store.write_json("provenance.json", provenance)
    say(f"run {store.run_id} → {store.dir}  (judge: {judge.name}, rubric {judge.rubric.ident})")

    tags = run_tags(exp, store)
    bars = Bars(options.show_progress)

    cells = plan_cells(exp, quality_measurable(exp))
    cell_stats: dict[str, Any] = {}

    def body() -> tuple[list[dict[str, Any]], Path]:
        if exp.sae_quality is not None and not quality_measurable(exp):
            say(f"SAE quality not measured: {QUALITY_NEEDS_CORPUS}")
        # a damaged line set aside belongs to some cell: every cell is looked at again (each
        # redoes only the items it is missing)
        done = {} if damaged else store.done_keys("cell")
        job = CellJob(
            exp,
            store,
            [c for c in cells if c.key not in done],
            device,
            options.batch_size,
            bars,
            say,
            judges,
            study_judges,
            options.judge_batch,
        )
        stats = executor.compute(job)
        cell_stats.update(stats.as_json())
        if stats.threads is not None:  # how the worker ran torch (a view of this session only)
            provenance["threads"] = stats.threads
            store.write_json("provenance.json", provenance)
        unjudged = [c for c in cells if c.key not in stats.judged]
        judge_cells(exp, store, unjudged, judges, study_judges, options, bars)
        bars.close()
        began = time.monotonic()
        summary = summarise(store, exp.seed)
        store.write_json("summary.json", summary)
        report = write_report(store, summary, options.reports_dir)
        if options.show_progress:
            say(
                f"summary ({len(summary)} rows) and report written in "
                f"{time.monotonic() - began:.1f} s"
            )
        if stats.failed:
            names = "; ".join(f"{c}: {r}" for c, r in stats.failed)
            raise HarnessError(
                f"{len(stats.failed)} cell(s) failed ({names}); the report covers the rest; "
                "run the spec again to resume them"
            )
        return summary, report

    started = time.time()
    store.write_status({"status": "running", "started": started, "pid": os.getpid()})
    view = ParentView(store) if options.log_to_mlflow else None
    try:
        if view is not None:
            view.open(exp, tags)
            if view.run_id is not None:
                store.write_status(
                    {
                        "status": "running",
                        "started": started,
                        "pid": os.getpid(),
                        "mlflow_run_id": view.run_id,
                        "tracking_uri": view.uri,
                    }
                )
        summary, report_path = body()
        if view is not None:
            began = time.monotonic()
            view.log(summary, report_path)
            if options.show_progress and view.error is None:
                say(f"MLflow: run logged in {time.monotonic() - began:.1f} s")
        check_unscored(exp, store)
    except BaseException as exc:
        status = (
            "killed"
            if isinstance(exc, KeyboardInterrupt)
            else "stopped"
            if isinstance(exc, BudgetReached)
            else "failed"
        )
        if view is not None:
            view.close("KILLED" if status == "killed" else "FAILED")
        try:
            store.write_status(
                {
                    "status": status,
                    "started": started,
                    "ended": time.time(),
                    "error": repr(exc)[:500],
                    "mlflow_run_id": view.run_id if view else None,
                    "cells": cell_stats,
                }
            )
        except OSError:  # neither written nor in place: the lock still tells it is not live
            pass
        raise
    if view is not None:
        view.close("FINISHED")
    mlflow_id = view.run_id if view is not None and view.error is None else None
    store.write_status(
        {
            "status": "finished",
            "started": started,
            "ended": time.time(),
            "mlflow_run_id": mlflow_id,
            "tracking_uri": view.uri if view is not None else None,
            "tracking_error": view.error if view is not None else tracking_error,
            "cells": cell_stats,
        }
    )
    return RunResult(store, summary, report_path, mlflow_id)
