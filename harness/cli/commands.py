"""Commands over one spec or one stored run: run, validate, plan, list, rescore, show, report."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from harness.errors import HarnessError, StoreError, TrackingError
from harness.store import default_runs_root
from harness.text import strip_control

__all__ = [
    "browse_hint",
    "cmd_list",
    "cmd_log",
    "cmd_plan",
    "cmd_report",
    "cmd_rescore",
    "cmd_run",
    "cmd_show",
    "cmd_validate",
    "executor_of",
    "on_sigterm",
]


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt("SIGTERM")


@contextmanager
def executor_of(args: argparse.Namespace, say: Any = print) -> Iterator[Any]:
    """The executor the command line asks for (None: local), closed when the command ends."""
    if args.executor == "local":
        for flag in ("address", "gpus_per_worker", "workers"):
            if getattr(args, flag) is not None:
                raise HarnessError(f"--{flag.replace('_', '-')} applies to --executor ray")
        yield None
        return
    from harness.execute.ray_executor import RayExecutor

    executor = RayExecutor(
        args.address, args.gpus_per_worker, args.workers, args.cell_retries, say=say
    )
    try:
        yield executor
    finally:
        executor.close()


def cmd_run(args: argparse.Namespace) -> int:
    from harness.spec.loading import load_spec
    from harness.spec.overrides import limited, with_judge

    exp = limited(with_judge(load_spec(args.spec), args.judge), args.limit)
    if exp.limit is not None:
        print(f"partial run: every prompt set cut to its first {exp.limit} prompt(s) (--limit)")
    signal.signal(signal.SIGTERM, on_sigterm)
    with executor_of(args) as executor:
        result = _run(args, exp, executor)
    print(f"report: {result.report_path}")
    print(f"run store: {result.store.dir}")
    if result.mlflow_run_id:
        import mlflow

        uri = mlflow.get_tracking_uri()
        print(f"mlflow run: {result.mlflow_run_id} (tracking URI {uri})")
        print(f"  browse it: {browse_hint(uri, exp.name, result.mlflow_run_id)}")
    return 0


def browse_hint(uri: str, experiment: str, run_id: str) -> str:
    """How to open a run in the MLflow UI: the server to start (for a local store) and the
    page of the run in the model-training view."""
    import mlflow

    found = mlflow.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found is not None else "0"
    page = f"#/experiments/{exp_id}/runs/{run_id}?workflowType=machine_learning"
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/{page}"
    return f"mlflow ui --backend-store-uri {uri}, then http://127.0.0.1:5000/{page}"


def _run(args: argparse.Namespace, exp: Any, executor: Any) -> Any:
    from harness.execute.runner import RunOptions, run_experiment

    return run_experiment(
        exp,
        RunOptions(
            runs_root=args.runs or default_runs_root(),
            reports_dir=args.reports,
            device=args.device,
            batch_size=args.batch_size,
            show_progress=not args.quiet,
            log_to_mlflow=not args.no_mlflow,
            require_tracking=args.require_tracking,
            max_cost_usd=args.max_cost,
            over_budget_ok=args.yes,
            judge_batch=args.judge_batch,
            judge_concurrency=args.judge_concurrency,
            judge_timeout_s=args.judge_timeout,
            judge_retries=args.judge_retries,
            judge_cache=args.judge_cache,
            wait=args.wait,
            executor=executor,
        ),
    )


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.spec.loading import load_spec
    from harness.spec.validate import validate_static

    exp = load_spec(args.spec)
    validate_static(exp)
    print(
        f"ok: {exp.name} ({len(exp.saes)} SAE(s), {len(exp.studies)} study(ies)), "
        f"spec hash {exp.spec_hash()[:12]}"
    )
    print(f"plan: {plan_line(exp)}")
    return 0


def plan_line(exp: Any) -> str:
    """The plan's size and the judge's cost in one line, against the budget a run applies."""
    from harness.execute.plan import plan
    from harness.judge.budget import DEFAULT_MAX_COST_USD

    totals = plan(exp).totals()
    size = (
        f"{totals['generations']:,} generations, {totals['forward_passes']:,} forward passes, "
        f"{totals['judge_calls']:,} judge calls"
    )
    if exp.judge.is_offline():
        return f"{size} (offline judge, no cost)"
    from harness.judge.anthropic_judge import estimate_cost

    cost = estimate_cost(exp.judge.model, totals["judge_calls"])
    limit = exp.judge.max_cost_usd if exp.judge.max_cost_usd is not None else DEFAULT_MAX_COST_USD
    verdict = (
        f"within the ${limit:.2f} budget"
        if cost <= limit
        else f"over the ${limit:.2f} budget: `harness run` refuses it without --max-cost or --yes"
    )
    return f"{size}, about ${cost:.2f} with {exp.judge.model}; {verdict}"


def cmd_plan(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from harness.execute.plan import plan
    from harness.spec.loading import load_spec
    from harness.spec.validate import validate_static

    exp = load_spec(args.spec)
    validate_static(exp)
    p = plan(exp, batch_size=args.batch_size)
    offline = exp.judge.is_offline()
    calls = p.totals()["judge_calls"]
    if offline:
        cost_usd, cost = 0.0, "$0.00 (offline judge)"
    else:
        from harness.judge.anthropic_judge import estimate_cost

        cost_usd = estimate_cost(exp.judge.model, calls)
        cost = f"${cost_usd:.2f} ({exp.judge.model}, about 300 tokens in and 80 out per call)"
    if args.json:
        data = {
            "rows": [asdict(r) for r in p.rows],
            "totals": p.totals(),
            "items": len(p.items),
            "judge": exp.judge.effective_kind() if offline else f"anthropic:{exp.judge.model}",
            "judge_cost_usd": cost_usd,
        }
        print(json.dumps(data, indent=1))
        return 0
    print(f"{exp.name}: spec hash {exp.spec_hash()[:12]}, batch size {args.batch_size}")
    from harness.spec import PretrainedModel

    if isinstance(exp.model, PretrainedModel):  # what validation read from the configs
        from harness.engine.preflight import preflight

        checked = preflight(exp)
        mem = checked.memory
        free = f"{mem['free_bytes'] / 2**30:.1f} GiB free" if mem["free_bytes"] else "free unknown"
        print(f"model: {exp.model.name} ({exp.model.dtype}) by {checked.rule.describe()}")
        print(f"memory: about {mem['needed_bytes'] / 2**30:.1f} GiB on {mem['device']}, {free}")
    head = [
        "sae",
        "study",
        "kind",
        "conditions",
        "controls",
        "prompts",
        "generations",
        "fwd passes",
        "judge",
    ]
    w_sae = max(len(head[0]), *(len(r.sae) for r in p.rows)) + 2
    w_study = max(len(head[1]), *(len(r.study) for r in p.rows)) + 2
    print(
        f"{head[0]:<{w_sae}}{head[1]:<{w_study}}{head[2]:<14}"
        + "".join(f"{h:>12}" for h in head[3:])
    )
    for r in p.rows:
        kind = r.kind
        nums = (
            r.conditions,
            r.controls,
            r.prompts,
            r.generations,
            r.forward_passes,
            r.judge_calls,
        )
        print(f"{r.sae:<{w_sae}}{r.study:<{w_study}}{kind:<14}" + "".join(f"{n:>12}" for n in nums))
    t = p.totals()
    print(
        f"total: {t['generations']} generations, {t['forward_passes']} forward passes, "
        f"{t['judge_calls']} judge calls; estimated judge cost {cost}"
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.store import RunStore

    root = args.runs or default_runs_root()
    runs = sorted(root.glob("*/spec.json"), key=lambda p: p.stat().st_mtime)
    if getattr(args, "nightly", False):  # each night's runs, by night
        runs += sorted(root.glob("nightly/*/*/spec.json"))
    if not runs:
        print(f"no runs under {root}")
        return 0
    print(f"{'run':<40}{'status':<10}{'generations':>12}{'judgements':>12}  night")
    for spec_path in runs:
        store = RunStore(spec_path.parent)
        status = store.status().get("status", "?")
        torn = 0
        try:
            n_gen = str(len(store.done_keys("generation")))
            n_judged = str(len(store.done_keys("judgement")))
            torn = store.torn_tail()
        except StoreError:  # one damaged run must not hide the others
            n_gen, n_judged = "damaged", "see show"
        night = spec_path.parent.parent
        where = night.name if night.parent.name == "nightly" and night.parent.parent == root else ""
        print(f"{store.run_id:<40}{status:<10}{n_gen:>12}{n_judged:>12}  {where}".rstrip())
        if torn:
            print(f"  └ {torn_line(torn)}")
    return 0


def torn_line(n_bytes: int) -> str:
    """What a torn tail of ``records.jsonl`` means, in one line."""
    return (
        f"records.jsonl ends in a torn line ({n_bytes} bytes cut mid-write): one record is "
        "missing from every view; `harness run` on its spec redoes it"
    )


def cmd_log(args: argparse.Namespace) -> int:
    import mlflow

    from harness.analysis.aggregate import summarise
    from harness.store import RunLockedError, RunStore
    from harness.views.report.markdown import write_report
    from harness.views.tracking import log_run, tracking_problem, unreachable

    store = RunStore.open(args.run, args.runs or default_runs_root())
    if store.is_live():  # the run's own end logs it (and a view built now would be a second)
        raise RunLockedError(
            f"run {store.run_id} is in progress; its own end writes its MLflow view "
            f"(run 'harness log {store.run_id}' after it, if it could not)"
        )
    uri = mlflow.get_tracking_uri()
    problem = tracking_problem()
    if problem is not None:
        raise TrackingError(unreachable(uri, problem).split("; results")[0] + "; nothing logged")
    with store.writer_lock():
        summary = summarise(store, store.experiment().seed)
        report = write_report(store, summary, args.reports)
        try:
            run_id = log_run(store, summary, report)
        except Exception as exc:  # MLflow's own errors are pages of retries: one line
            line = unreachable(uri, exc).split("; results")[0]
            raise TrackingError(f"{line}; the view is incomplete, run this again") from None
        status = store.status()
        if status.get("status") == "finished":  # the view exists now: the status says where
            store.write_status(
                {**status, "mlflow_run_id": run_id, "tracking_uri": uri, "tracking_error": None}
            )
    print(f"mlflow run: {run_id} (tracking URI {uri}); report: {report}")
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from harness.analysis.regress import accepted_tags
    from harness.execute.runner import rescore
    from harness.store import RunStore

    root = args.runs or default_runs_root()
    store = RunStore.open(args.run, root)
    made, report = rescore(
        store,
        args.rubric,
        args.reports,
        judge=args.judge,
        accepted_as=accepted_tags(store, root),
        update_baseline=args.update_baseline,
    )
    print(f"{made} new judgements; report: {report}")
    print_agreements(store, store.read_json("provenance.json")["judge"])
    return 0


def print_agreements(store: Any, judge: str) -> None:
    """One line per rubric on which ``judge`` and another judge (or annotator) scored the same
    items: exact agreement, κ with its CI, Spearman, n (identical texts once)."""
    import numpy as np

    from harness.analysis.judge_agreement import item_texts, judge_agreement

    judgements = list(store.records("judgement"))
    for a in judge_agreement(judgements, np.random.default_rng(0), texts=item_texts(store)):
        if judge in a.judges:
            k = a.kappa
            print(
                f"agreement on {a.rubric}: {a.first} vs {a.second}: exact {a.exact.value:.2f}, "
                f"κ {k.value:.2f} [{k.ci_low:.2f}, {k.ci_high:.2f}], Spearman "
                f"{a.spearman.value:.2f} (n={k.n})"
            )


def cmd_show(args: argparse.Namespace) -> int:
    from harness.store import RunStore

    store = RunStore.open(args.run, args.runs or default_runs_root())
    if not (store.dir / "summary.json").exists():
        state = store.status().get("status", "not started")
        raise StoreError(
            f"run {store.run_id} has no summary yet (status: {state}); re-run its spec"
        )
    rows = store.read_json("summary.json")
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    status = store.status()
    print(f"run {store.run_id}: {status.get('status', '?')}")
    cols = ("sae", "study", "condition", "metric")
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) + 2 for c in cols}
    print("".join(f"{c:<{width[c]}}" for c in cols) + f"{'value':>8}  {'95% CI':<16}n")
    for r in rows:
        ci = f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        print(
            strip_control("".join(f"{r[c]!s:<{width[c]}}" for c in cols))
            + f"{r['value']:>8.3f}  {ci:<16}{r['n']}"
        )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.analysis.aggregate import summarise
    from harness.store import RunStore
    from harness.views.report.markdown import write_report

    store = RunStore.open(args.run, args.runs or default_runs_root())
    summary = summarise(store, store.experiment().seed)
    path = write_report(store, summary, args.reports, args.template)
    if torn := store.torn_tail():
        print(f"harness: warning: run {store.run_id}: {torn_line(torn)}", file=sys.stderr)
    print(f"report: {path}")
    return 0
