"""``harness compare``: SAE checkpoints side by side (specs are run first)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from harness.cli.commands import executor_of, on_sigterm
from harness.errors import HarnessError, SpecError
from harness.store import default_runs_root
from harness.text import signed

__all__ = ["cmd_compare"]


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.analysis.compare import (
        checkpoints_of,
        compare,
        comparison_name,
        sae_from_arg,
    )
    from harness.analysis.compare_rows import verdict
    from harness.engine.feature_match import match_features
    from harness.execute.runner import RunOptions, run_experiment
    from harness.spec import Experiment
    from harness.spec.loading import load_spec
    from harness.views.notebook import load_run
    from harness.views.report.compare import write_comparison

    runs_root = args.runs or default_runs_root()
    saes = tuple(sae_from_arg(a) for a in args.sae) if args.sae else None
    signal.signal(signal.SIGTERM, on_sigterm)
    targets: list[Any] = []  # an Experiment to run, or a stored run
    for target in args.targets:
        path = Path(target)
        if path.suffix == ".py" and path.is_file():
            exp = load_spec(path)
            targets.append(exp.with_saes(saes) if saes is not None else exp)
        elif saes is not None:
            raise HarnessError(f"--sae applies to spec files; {target!r} is a stored run")
        else:
            targets.append(load_run(target, runs_root))
    n_saes = sum(len(t.saes if isinstance(t, Experiment) else t.experiment.saes) for t in targets)
    if n_saes < 2:
        raise SpecError(
            "a comparison needs at least two SAE checkpoints (a spec with several SAEs, "
            "several runs, or --sae given twice or more)"
        )
    loaded = []
    with executor_of(args) as executor:  # one pool for every spec (models stay warm)
        for t in targets:
            if isinstance(t, Experiment):
                options = RunOptions(
                    runs_root=runs_root,
                    reports_dir=args.reports,
                    device=args.device,
                    show_progress=not args.quiet,
                    log_to_mlflow=not args.no_mlflow,
                    require_tracking=args.require_tracking,
                    max_cost_usd=args.max_cost,
                    over_budget_ok=args.yes,
                    executor=executor,
                )
                t = load_run(run_experiment(t, options).store.dir, runs_root)
            loaded.append(t)
    from harness.analysis.gate_judge import judge_alike

    alike = judge_alike(loaded)  # judged scores of every run read with one judge
    loaded = alike.runs
    checkpoints = checkpoints_of(loaded)
    rows = compare(checkpoints, loaded[0].experiment.seed)
    matches, note = match_features(checkpoints)
    path = write_comparison(
        checkpoints, rows, matches, note, args.reports / f"{comparison_name(checkpoints)}.md"
    )
    print(
        f"comparison of {len(checkpoints)} checkpoints (reference {checkpoints[0].name}; judged "
        f"scores by {alike.label()}): {path}"
    )
    for row in rows:
        for c, d in zip(checkpoints[1:], row.differences, strict=True):
            word = verdict(row, d)
            if word:
                print(
                    f"  {c.name} {row.study} {row.condition} {row.metric}: "
                    f"{signed(d.value)} [{signed(d.ci_low)}, {signed(d.ci_high)}] (n={d.n}) vs "
                    "reference: "
                    f"{word}"
                )
    return 0
