"""The ``harness`` command line: a thin layer over the runner, the store and the toy builder.

Exit codes: 0 success; 1 a run failed (or, later, a regression); 2 a user error (bad spec, bad
arguments, missing run). User errors print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType

from harness.errors import HarnessError
from harness.store import default_runs_root

__all__ = ["main"]

EPILOG = """exit codes: 0 ok, 1 run failed, 2 user error (bad spec or arguments)

examples:
  harness run experiments/toy_golden_gate.py     run the toy demo end to end
  harness validate experiments/toy_golden_gate.py
  harness show latest --json                     summary rows of the newest run
  harness report latest                          rebuild its Markdown report
  harness toy build --out /tmp/toy               rebuild the toy world from its seed
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness",
        description="Run SAE feature-intervention experiments (ablations, saturation clamps), "
        "judge the outputs, and write MLflow runs and Markdown reports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run (or resume) an experiment spec",
        description="Run every study of SPEC on every SAE. Re-running the same "
        "spec resumes: finished generations and judgements are not redone.",
    )
    run.add_argument("spec", type=Path, help="experiment file exposing spec() -> Experiment")
    run.add_argument(
        "--runs", type=Path, default=None, help="run store root (default: $HARNESS_RUNS or ./runs)"
    )
    run.add_argument(
        "--reports",
        type=Path,
        default=Path("reports"),
        help="where the Markdown report goes (default: ./reports)",
    )
    run.add_argument(
        "--device",
        default=None,
        choices=["auto", "cpu", "cuda", "mps"],
        help="overrides the spec's model.device (auto: cuda, then mps, then cpu)",
    )
    run.add_argument("--batch-size", type=int, default=64, help="rows per forward pass")
    run.add_argument("--no-mlflow", action="store_true", help="skip the MLflow view")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    val = sub.add_parser("validate", help="check a spec without loading any model")
    val.add_argument("spec", type=Path)

    for name, text in (
        ("show", "print a run's summary table"),
        ("report", "rebuild a run's Markdown report from its store"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("run", help="run id, run directory, or 'latest'")
        cmd.add_argument("--runs", type=Path, default=None, help="run store root")
        if name == "show":
            cmd.add_argument("--json", action="store_true", help="print the rows as JSON")
        else:
            cmd.add_argument("--reports", type=Path, default=Path("reports"))

    toy = sub.add_parser("toy", help="the embedded toy world")
    toy_sub = toy.add_subparsers(dest="toy_command", required=True, metavar="TOY_COMMAND")
    build = toy_sub.add_parser(
        "build", help="rebuild corpus, tokenizer, model and SAEs from the seed"
    )
    build.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: the package's shipped assets)",
    )
    toy_sub.add_parser("check", help="measure the shipped toy world (SAE quality, steering)")
    return p


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt("SIGTERM")


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.loading import load_spec
    from harness.runner import RunOptions, run_experiment

    exp = load_spec(args.spec)
    signal.signal(signal.SIGTERM, _on_sigterm)
    result = run_experiment(
        exp,
        RunOptions(
            runs_root=args.runs or default_runs_root(),
            reports_dir=args.reports,
            device=args.device,
            batch_size=args.batch_size,
            show_progress=not args.quiet,
            log_to_mlflow=not args.no_mlflow,
        ),
    )
    print(f"report: {result.report_path}")
    print(f"run store: {result.store.dir}")
    if result.mlflow_run_id:
        import mlflow

        print(f"mlflow run: {result.mlflow_run_id} (tracking URI {mlflow.get_tracking_uri()})")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.loading import load_spec
    from harness.validate import validate_static

    exp = load_spec(args.spec)
    validate_static(exp)
    print(
        f"ok: {exp.name} ({len(exp.saes)} SAE(s), {len(exp.studies)} study(ies)), "
        f"spec hash {exp.spec_hash()[:12]}"
    )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from harness.store import RunStore

    store = RunStore.open(args.run, args.runs or default_runs_root())
    rows = store.read_json("summary.json")
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'sae':<16}{'study':<22}{'condition':<10}{'metric':<15}{'value':>8}  CI             n")
    for r in rows:
        print(
            f"{r['sae']:<16}{r['study']:<22}{r['condition']:<10}{r['metric']:<15}"
            f"{r['value']:>8.3f}  [{r['ci_low']:.2f}, {r['ci_high']:.2f}]  {r['n']}"
        )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.aggregate import summarise
    from harness.report.markdown import render_report
    from harness.store import RunStore

    store = RunStore.open(args.run, args.runs or default_runs_root())
    summary = summarise(store, store.experiment().seed)
    args.reports.mkdir(parents=True, exist_ok=True)
    path = args.reports / f"{store.run_id}.md"
    path.write_text(render_report(store, summary))
    print(f"report: {path}")
    return 0


def _cmd_toy(args: argparse.Namespace) -> int:
    from harness.toy.world import ASSETS

    if args.toy_command == "build":
        from harness.toy.build import build

        out = build(args.out or ASSETS)
        print(f"toy world written to {out}")
        return 0
    return _toy_check()


def _toy_check() -> int:
    from harness.backend import load_model, load_sae
    from harness.spec import ToyModel, ToySAE
    from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS
    from harness.toy.quality import sae_quality, steering_check
    from harness.toy.world import eval_documents, toy_sae_names

    model = load_model(ToyModel())
    docs = eval_documents()
    print("| SAE | explained variance | L0 | dead | GG feature | mentions unclamped | at 10x max |")
    print("|---|---|---|---|---|---|---|")
    for name in toy_sae_names():
        sae = load_sae(ToySAE(name=name), name)
        q = sae_quality(model, sae, docs)
        s = steering_check(model, sae, GOLDEN_GATE, list(NEUTRAL_PROMPTS), docs)
        print(
            f"| {name} | {q.explained_variance:.3f} | {q.l0:.1f} | {q.dead_fraction:.1%} "
            f"| {s.feature} | {s.baseline_mention_rate:.0%} | {s.clamped_mention_rate:.0%} |"
        )
    print(f"({q.n_tokens} held-out tokens; {s.n_prompts} neutral prompts, 20 new tokens each)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    args = _parser().parse_args(argv)
    handlers = {
        "run": _cmd_run,
        "validate": _cmd_validate,
        "show": _cmd_show,
        "report": _cmd_report,
        "toy": _cmd_toy,
    }
    try:
        return handlers[args.command](args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted; finished items are saved, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
