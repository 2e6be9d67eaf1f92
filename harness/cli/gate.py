"""The regression gate's commands: regress, accept, nightly."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from harness.cli.commands import executor_of, on_sigterm
from harness.errors import HarnessError
from harness.store import default_runs_root

__all__ = ["cmd_accept", "cmd_history", "cmd_nightly", "cmd_regress", "regress_one"]


def regress_one(
    store: Any,
    baseline_ref: str | None,
    runs: Path,
    reports: Path,
    allow_unpaired: bool = False,
    night: str | None = None,
) -> int:
    """Regress one run against its baseline; prints a verdict line; returns the exit code (an
    SAE of the run with no counterpart in the baseline fails it unless ``allow_unpaired``)."""
    from harness.analysis.regress import (
        default_tag,
        regress,
        resolve_baseline,
        unpaired_saes,
        write_regression_report,
    )
    from harness.views.notebook import load_run

    current = load_run(store.dir, runs)
    ref = baseline_ref or default_tag(current.experiment.name)
    base_store = resolve_baseline(ref, runs, store)
    baseline = load_run(base_store.dir, runs)
    checks = regress(current, baseline, current.experiment.seed)
    name = f"{current.run_id}-vs-{baseline.run_id}-regression.md"
    if night:  # a nightly's file is named by its night, in the night's folder
        name = f"{night}-{name}"
    unchecked = unpaired_saes(current, baseline)
    path = write_regression_report(
        checks, current, baseline, reports / name, (unchecked, allow_unpaired), night
    )
    failed = [c for c in checks if c.regressed]
    blocked = bool(unchecked) and not allow_unpaired
    verdict = "REGRESSED" if failed else "UNCHECKED SAEs" if blocked else "ok"
    same = (
        " (the baseline is this run itself: every check passes trivially)"
        if (Path(base_store.dir).resolve() == Path(store.dir).resolve())
        else ""
    )
    print(
        f"{current.run_id}: {verdict} vs {baseline.run_id} ({len(failed)}/{len(checks)} "
        f"checks regressed) → {path}{same}"
    )
    for c in failed:
        print(
            f"  {c.sae} {c.study} {c.condition} {c.metric}: {c.baseline:.3f} → {c.current:.3f}"
            + (f" (judge {c.judge})" if c.judge else "")
            + (f" ({c.note})" if c.note else "")
        )
    if unchecked:
        print(
            f"  unchecked: {', '.join(unchecked)} (the baseline has "
            f"{len(baseline.experiment.saes)} SAE(s); SAEs pair by their place in the spec)"
            + (" — allowed by --allow-unpaired" if allow_unpaired else "; --allow-unpaired to pass")
        )
    return 1 if failed or blocked else 0


def cmd_regress(args: argparse.Namespace) -> int:
    from harness.store import RunStore

    runs = args.runs or default_runs_root()
    return regress_one(
        RunStore.open(args.run, runs), args.baseline, runs, args.reports, args.allow_unpaired
    )


def cmd_accept(args: argparse.Namespace) -> int:
    from harness.analysis.regress import accept
    from harness.store import RunStore

    runs = args.runs or default_runs_root()
    store = RunStore.open(args.run, runs)
    tag = accept(store, runs, args.tag)
    print(f"accepted {store.run_id} as {tag}")
    return 0


def cmd_nightly(args: argparse.Namespace) -> int:

    runs = args.runs or default_runs_root()
    if not args.folder.is_dir():
        raise HarnessError(f"{args.folder} is not a folder of specs")
    night = runs / "nightly" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    signal.signal(signal.SIGTERM, on_sigterm)
    specs = sorted(args.folder.glob("*.py"))
    with executor_of(args) as executor:  # one pool for the whole suite (models stay warm)
        worst, ran = _nightly(args, specs, runs, night, executor)
    print(f"nightly: {ran} spec(s) tagged nightly in {args.folder}; runs in {night}")
    return worst


def _nightly(
    args: argparse.Namespace, specs: list[Path], runs: Path, night: Path, executor: Any
) -> tuple[int, int]:
    from harness.analysis.regress import baseline_tags, default_tag
    from harness.execute.runner import RunOptions, run_experiment
    from harness.spec.loading import load_spec

    worst, ran = 0, 0
    for path in specs:
        try:
            exp = load_spec(path)
        except HarnessError as exc:
            print(f"{path.name}: spec error: {exc}", file=sys.stderr)
            worst = 1
            continue
        if "nightly" not in exp.tags:
            continue
        ran += 1
        began = time.monotonic()
        reports = args.reports / "nightly" / night.name  # never over a baseline's report
        if not args.quiet:  # one line per spec, and each stage's line on stderr as it ends
            print(f"nightly: {exp.name} ({path.name}) …", flush=True)
        try:
            result = run_experiment(
                exp,
                RunOptions(
                    runs_root=night,
                    reports_dir=reports,
                    device=args.device,
                    batch_size=args.batch_size,
                    show_progress=not args.quiet,
                    wait=args.wait,
                    log_to_mlflow=not args.no_mlflow,
                    require_tracking=args.require_tracking,
                    max_cost_usd=args.max_cost,
                    over_budget_ok=args.yes,
                    executor=executor,
                ),
                say=lambda _: None,
            )
        except HarnessError as exc:
            print(f"{exp.name}: run failed: {exc}", file=sys.stderr)
            worst = 1
            continue
        if not args.quiet:
            print(f"nightly: {exp.name} computed in {time.monotonic() - began:.0f} s", flush=True)
        if default_tag(exp.name) not in baseline_tags(runs):
            print(
                f"{result.store.run_id}: no baseline yet; accept it with "
                f"`harness accept {result.store.dir} --runs {runs}`"
            )
            continue
        code = regress_one(result.store, None, runs, reports, args.allow_unpaired, night.name)
        worst = max(worst, code)
    return worst, ran


def cmd_history(args: argparse.Namespace) -> int:
    from harness.analysis.history import nightly_history
    from harness.views.report.markdown_table import fmt_estimate

    runs = args.runs or default_runs_root()
    name = args.spec
    if args.spec.endswith(".py"):
        from harness.spec.loading import load_spec

        name = load_spec(Path(args.spec)).name
    nights = nightly_history(name, runs)
    if not nights:
        raise HarnessError(
            f"no nightly runs of {name!r} under {runs / 'nightly'}; `harness nightly FOLDER` "
            "runs the specs tagged 'nightly' there"
        )
    print(f"history of {name}: {len(nights)} night(s) under {runs / 'nightly'}")
    for n in nights:
        points = [
            p for p in n.points if args.metric in (None, p.metric) and args.study in (None, p.study)
        ]
        print(f"{n.night}  {n.run_id}  ({n.status}, {len(points)} quantities)")
        for p in points:
            estimate = fmt_estimate(p.value, p.ci_low, p.ci_high, p.n)
            print(f"  {p.sae} {p.study} {p.condition} {p.metric}: {estimate}")
    if args.mlflow:
        from harness.views.history import log_history

        run_id = log_history(name, nights, args.metric, args.study)
        print(f"mlflow run: {run_id} (history: {name}; one step per night)")
    return 0
