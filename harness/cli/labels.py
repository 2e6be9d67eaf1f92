"""``harness label``: write a labelling sheet of a run, or import an annotator's labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import HarnessError
from harness.store import default_runs_root

__all__ = ["add_label_parser", "cmd_label"]

USAGE = (
    "harness label RUN --out SHEET.csv [--rubric R] [--n 100] [--stratify STRATUM] [--seed 0]\n"
    "       harness label import RUN SHEET.csv --annotator NAME"
)


def add_label_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lb = sub.add_parser(
        "label",
        help="write a labelling sheet of a run, or import an annotator's labels",
        usage=USAGE,
        description="`harness label RUN --out sheet.csv` writes a sheet of the run's judged "
        "generations (prompt, continuation, the rubric's text and scale; no judge's score) "
        "sampled with a seed and stratified so every condition (or prompt set, or judge score) "
        "appears; fill its score column (blank: not labelled). `harness label import RUN "
        "sheet.csv --annotator NAME` checks every row and stores the labels as judgements of "
        "the judge human:NAME (all or nothing; they never replace a model judge's); the report's "
        "Judge section then gives each judge's agreement with the humans.",
    )
    lb.add_argument(
        "words",
        nargs="+",
        metavar="RUN | import RUN SHEET",
        help="a run (id, directory, 'latest'); or 'import', the run and the filled sheet",
    )
    lb.add_argument("--out", type=Path, default=None, help="the sheet to write (CSV)")
    lb.add_argument(
        "--rubric", default=None, help="rubric to label (default: the run's primary rubric)"
    )
    lb.add_argument("--n", type=int, default=100, help="items on the sheet (default 100)")
    lb.add_argument(
        "--stratify",
        default="level",
        choices=("level", "prompt_set", "judge_score"),
        help="strata every one of which appears on the sheet (default: level, i.e. condition)",
    )
    lb.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    lb.add_argument("--annotator", default=None, help="import: who labelled the sheet")
    lb.add_argument(
        "--runs", type=Path, default=None, help="run store root (default: $HARNESS_RUNS or ./runs)"
    )
    lb.add_argument(
        "--reports",
        type=Path,
        default=Path("reports"),
        help="import: where the rebuilt report goes (default: ./reports)",
    )


def cmd_label(args: argparse.Namespace) -> int:
    from harness.execute.labels import import_sheet, write_sheet
    from harness.store import RunStore

    root = args.runs or default_runs_root()
    words = list(args.words)
    if words[0] == "import":
        if len(words) != 3 or not args.annotator:
            raise HarnessError(f"usage: {USAGE.splitlines()[1].strip()}")
        store = RunStore.open(words[1], root)
        with store.writer_lock():  # the import, then the report and MLflow rebuilt from it
            result = import_sheet(store, Path(words[2]), args.annotator)
            print(
                f"{result.judge}: {result.stored} label(s) stored, {result.already} already "
                f"stored, {result.blank} row(s) left blank"
            )
            return _agreement_and_views(store, result.judge, args.reports)
    if len(words) != 1 or args.out is None:
        raise HarnessError(f"usage: {USAGE.splitlines()[0]}")
    if args.n < 1:
        raise HarnessError(f"--n must be at least 1, got {args.n}")
    store = RunStore.open(words[0], root)
    n = write_sheet(store, args.out, args.rubric, args.n, args.stratify, args.seed)
    print(f"{args.out}: {n} item(s) of run {store.run_id} to label (fill the score column)")
    return 0


def _agreement_and_views(store: object, judge: str, reports: Path) -> int:
    from harness.analysis.aggregate import summarise
    from harness.cli.commands import print_agreements
    from harness.execute.judging import rebuild_view
    from harness.store import RunStore
    from harness.views.report.markdown import write_report

    assert isinstance(store, RunStore)
    print_agreements(store, judge)
    summary = summarise(store, store.experiment().seed)
    path = write_report(store, summary, reports)
    rebuild_view(store, summary, path)
    print(f"report: {path}")
    return 0
