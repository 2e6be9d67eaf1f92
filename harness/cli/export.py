"""``harness export inspect RUN --out DIR``: a run as an Inspect AI eval log."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.store import default_runs_root

__all__ = ["add_export_parser", "cmd_export"]


def add_export_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ex = sub.add_parser(
        "export",
        help="write a run in another tool's format (inspect: an Inspect AI eval log)",
        description="`harness export inspect RUN --out DIR` writes the run as an Inspect AI "
        "eval log (Inspect's own log types and writer): one sample per judged generation "
        "(prompt, continuation, SAE, study, condition, level, feature) with one score per "
        "rubric and judge, unscored judgements as Inspect's unscored scores. `inspect view "
        "--log-dir DIR` then lists the run and its samples. Needs the inspect extra.",
    )
    ex.add_argument("format", choices=("inspect",), help="the format to write")
    ex.add_argument("run", help="run id, run directory, 'latest' or 'latest-any'")
    ex.add_argument(
        "--out", type=Path, default=Path("inspect-logs"), help="folder (default: ./inspect-logs)"
    )
    ex.add_argument(
        "--runs", type=Path, default=None, help="run store root (default: $HARNESS_RUNS or ./runs)"
    )


def cmd_export(args: argparse.Namespace) -> int:
    from harness.store import RunStore
    from harness.views.inspect_export import export_inspect

    store = RunStore.open(args.run, args.runs or default_runs_root())
    path = export_inspect(store, args.out)
    print(f"inspect log: {path} (browse it: inspect view --log-dir {args.out})")
    return 0
