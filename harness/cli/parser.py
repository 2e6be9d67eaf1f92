"""The argument parser of the ``harness`` command (every subcommand, its options and help)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.export import add_export_parser
from harness.cli.labels import add_label_parser
from harness.cli.parser_parts import (
    add_bench_parsers,
    add_executor_args,
    add_guard_args,
    add_run_tuning_args,
    add_threads_arg,
)

__all__ = ["EPILOG", "build_parser"]

DEVICES = ["auto", "cpu", "cuda", "mps"]
DEVICE_HELP = "overrides the spec's model.device (auto: cuda, then mps, then cpu)"
RUN_REF = (
    "run id, run directory, 'latest' (the newest finished run, nightly runs included) or "
    "'latest-any' (the newest started run, whatever its status)"
)
REPORTS_HELP = "where Markdown reports and their plots go (default: ./reports)"

EPILOG = """exit codes: 0 ok; 1 run failed (or too many unscored judgements); 2 user error
(bad spec or arguments, unloadable model, missing run); 130 interrupted (resume by re-running)

examples:
  harness run experiments/toy_golden_gate.py     run the toy demo end to end
  harness validate experiments/toy_golden_gate.py
  harness plan experiments/toy_golden_gate.py    the work matrix and its cost
  harness list                                   the runs in ./runs (--nightly: and each night's)
  harness history experiments/toy_golden_gate.py gated metrics night by night, with CIs
  harness rescore latest                         re-judge stored outputs, no regeneration
  harness show latest --json                     summary rows of the newest finished run
  harness report latest                          rebuild its Markdown report
  harness log latest                             rebuild its MLflow run from the store
  harness toy build --out /tmp/toy               rebuild the toy world from its seed
  harness bench sweep --json                     clamp-sweep speed and overhead ratios
  harness bench store                            run-store cost per record at 10k and 100k
  harness bench scale                            Ray executor vs local: cells/s, driver cost
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness",
        description="Run SAE feature-intervention experiments (ablations, saturation clamps), "
        "judge the outputs, and write MLflow runs and Markdown reports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show the libraries' own log lines (MLflow, HTTP clients, model loaders)",
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
    run.add_argument("--device", default=None, choices=DEVICES, help=DEVICE_HELP)
    run.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="rows per forward pass (default: as many as fit a 1 GiB budget)",
    )
    add_guard_args(run, "skip the MLflow view")
    add_run_tuning_args(run)
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_args(run)
    run.add_argument(
        "--wait",
        action="store_true",
        help="when another process is writing the same run, wait for it (default: refuse, exit 2)",
    )

    val = sub.add_parser(
        "validate",
        help="check a spec without loading any model",
        description="Load SPEC and check everything that needs no weights: fields, features, "
        "prompts (control characters, unknown toy words), rubrics, a real model's and SAEs' "
        "configs (model name, hook, width, BOS, memory). Prints the spec hash and the plan's "
        "size and judge cost against the budget; a problem is one line, exit 2.",
    )
    val.add_argument("spec", type=Path, help="experiment file exposing spec() -> Experiment")

    pl = sub.add_parser(
        "plan",
        help="print the work matrix and what a run will cost",
        description="Expand SPEC into SAE × study × condition × prompt work items and print the "
        "counts: generations, forward passes, judge calls, estimated judge cost.",
    )
    pl.add_argument("spec", type=Path, help="experiment file exposing spec() -> Experiment")
    pl.add_argument("--batch-size", type=int, default=64, help="rows per forward pass")
    pl.add_argument("--json", action="store_true", help="print the plan as JSON")

    ls = sub.add_parser(
        "list",
        help="list the runs in the run store",
        description="Every run under the run store root with its status (running, finished, "
        "failed, stopped, killed) and record counts; a run whose records.jsonl ends in a torn "
        "line is flagged.",
    )
    ls.add_argument("--runs", type=Path, default=None, help="run store root")
    ls.add_argument(
        "--nightly",
        action="store_true",
        help="also the runs of every night under <runs>/nightly/ (with the night's folder)",
    )

    rs = sub.add_parser(
        "rescore",
        help="re-judge a run's stored outputs without regenerating",
        description="Judge every stored generation of RUN (and a kind's own records, e.g. a "
        "specificity study's contexts) with the given rubric and/or judge (items already judged "
        "by the same judge and rubric are not judged again), make that the run's active "
        "judgement for every study whose items it all judged (any other study keeps its judge, "
        "said in one line), and rebuild its summary and report. No model is loaded. An accepted "
        "baseline keeps its gate judge unless --update-baseline; more unscored judgements than "
        "the spec's judge.max_unscored_fraction exit 1, as a run does.",
    )
    rs.add_argument("run", help=RUN_REF)
    rs.add_argument(
        "--rubric",
        default=None,
        help="primary rubric for the generations (default: the spec's); a kind's own rubric, "
        "such as specificity, is refused",
    )
    rs.add_argument(
        "--judge",
        choices=("offline", "offline-keyword", "anthropic"),
        default=None,
        help="judge with this judge instead of the spec's (the earlier judgements stay; the "
        "report gives both judges' agreement: exact, Cohen's κ, Spearman, with CIs)",
    )
    rs.add_argument(
        "--update-baseline",
        action="store_true",
        help="RUN is an accepted baseline: make the new judge its gate judge too (without it "
        "the new judgements are stored and the gate keeps reading the old ones)",
    )
    rs.add_argument("--runs", type=Path, default=None, help="run store root")
    rs.add_argument("--reports", type=Path, default=Path("reports"), help=REPORTS_HELP)

    lg = sub.add_parser(
        "log",
        help="rebuild a run's MLflow view from its store (it replaces the run's earlier parent)",
        description="Log RUN to MLflow from its run store alone: a parent run tagged "
        "harness.run_id=RUN and harness.view=rebuilt, one nested run per SAE × study (tagged "
        "like the parent), the records, summary, report and plots as artifacts. There is one "
        "parent run per run (id and directory): the rebuild replaces the earlier parent (the "
        "run's own, or an earlier rebuild; deleted in MLflow, purged by `mlflow gc`); an "
        "attempt left RUNNING by "
        "a dead process is marked KILLED first. Refused while RUN is in progress (its own end "
        "logs it) and, in one line, when the tracking server does not answer. The tracking "
        "URI is MLFLOW_TRACKING_URI (default: ./mlflow.db).",
    )
    lg.add_argument("run", help=RUN_REF)
    lg.add_argument("--runs", type=Path, default=None, help="run store root")
    lg.add_argument("--reports", type=Path, default=Path("reports"), help=REPORTS_HELP)

    rg = sub.add_parser(
        "regress",
        help="gate a run's headline metrics against an accepted baseline (exit 1 on regression)",
        description="Compare RUN's headline metrics (the spec's `regression` tolerances; default: "
        "concept and fluency scores may not fall by more than 0.5, explained variance and "
        "CE-loss score by more than 0.05) with the baseline, paired by prompt (by token "
        "sequence for SAE quality). A check regresses when its mean worsens by more than "
        "the tolerance and the 95% bootstrap CI of the paired difference excludes 0. Writes "
        "<reports>/<run>-vs-<baseline>-regression.md; exit 0 = OK, 1 = regressed, 2 = no usable "
        "baseline (none accepted yet, or one of another experiment).",
    )
    rg.add_argument("run", help=RUN_REF)
    rg.add_argument(
        "--baseline",
        default=None,
        help="a tag given to `harness accept`, a run id or a run directory "
        "(default: the tag accepted/<experiment name>)",
    )
    rg.add_argument(
        "--allow-unpaired",
        action="store_true",
        help="pass although the run has SAEs the baseline has no counterpart for (default: they "
        "are listed as unchecked and fail the gate)",
    )
    rg.add_argument("--runs", type=Path, default=None, help="run store root (holds the tags)")
    rg.add_argument("--reports", type=Path, default=Path("reports"), help=REPORTS_HELP)

    ac = sub.add_parser(
        "accept",
        help="tag a finished run as the accepted baseline",
        description="Record RUN as the baseline under TAG (default accepted/<experiment name>) "
        "in <runs>/baselines.json, and tag its MLflow run harness.accepted_as=TAG.",
    )
    ac.add_argument("run", help=RUN_REF)
    ac.add_argument("--tag", default=None, help="baseline tag (default: accepted/<name>)")
    ac.add_argument("--runs", type=Path, default=None, help="run store root (holds the tags)")

    hi = sub.add_parser(
        "history",
        help="a spec's gated metrics night by night, with their CIs",
        description="For the experiment of SPEC (a spec file or an experiment name): every "
        "night's run under <runs>/nightly/, oldest first, with each metric the regression gate "
        "checks (target prompts; the baseline and the controls left out) as value [95% CI] and "
        "n. With --mlflow, also one MLflow run 'history: NAME' whose charts plot each quantity "
        "over the nights (step = night).",
    )
    hi.add_argument("spec", help="spec file (.py) or experiment name")
    hi.add_argument("--runs", type=Path, default=None, help="run store root")
    hi.add_argument("--metric", default=None, help="only this metric (e.g. concept_score)")
    hi.add_argument("--study", default=None, help="only this study")
    hi.add_argument(
        "--mlflow", action="store_true", help="also log the trend as an MLflow run (charts)"
    )

    ni = sub.add_parser(
        "nightly",
        help="run every spec tagged 'nightly' in a folder and gate each against its baseline",
        description="For every *.py spec in FOLDER whose tags include 'nightly': run it from "
        "scratch into <runs>/nightly/<UTC time>/ (judgements already paid for come from the "
        "judge cache), then `regress` it against accepted/<experiment name> when that baseline "
        "exists. The night's reports and regression files go to <reports>/nightly/<UTC time>/ "
        "(never over a baseline's report); `harness history SPEC` prints the trend over nights. "
        "Exit 1 if any spec fails or regresses.",
    )
    ni.add_argument("folder", type=Path, help="folder of experiment specs")
    ni.add_argument(
        "--allow-unpaired",
        action="store_true",
        help="pass although the run has SAEs the baseline has no counterpart for (default: they "
        "are listed as unchecked and fail the gate)",
    )
    ni.add_argument("--runs", type=Path, default=None, help="run store root (holds the tags)")
    ni.add_argument("--reports", type=Path, default=Path("reports"), help=REPORTS_HELP)
    add_guard_args(ni, "skip the MLflow view")
    ni.add_argument("--device", choices=DEVICES, default=None, help=DEVICE_HELP)
    ni.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="rows per forward pass (default: as many as fit a 1 GiB budget)",
    )
    ni.add_argument("--quiet", action="store_true", help="no per-spec and per-stage progress")
    ni.add_argument(
        "--wait",
        action="store_true",
        help="when another process is writing a spec's run, wait for it (default: refuse)",
    )
    add_threads_arg(ni)
    add_executor_args(ni)

    cp = sub.add_parser(
        "compare",
        help="compare SAE checkpoints side by side (SAE quality and every study's headlines)",
        description="Each TARGET is a spec file (run, or resumed, first) or a stored run (id, "
        "directory or 'latest'). Every SAE of every target is a checkpoint; the first is the "
        "reference. Writes <reports>/compare-<hash>.md: SAE quality (sae_lens.evals metrics: "
        "explained variance, L0, dead fraction, CE-loss score, KL score), each study's headline "
        "metrics per checkpoint with 95% bootstrap CIs, the difference from the reference with "
        "a paired bootstrap CI, and features matched by decoder cosine.",
    )
    cp.add_argument("targets", nargs="+", help="spec files and/or runs")
    cp.add_argument(
        "--sae",
        action="append",
        default=None,
        metavar="CHECKPOINT",
        help="run the spec(s) over these SAEs instead of the spec's own (repeat for each): "
        "toy:NAME, local:PATH (a SAELens checkpoint folder) or release:RELEASE:SAE_ID",
    )
    cp.add_argument("--runs", type=Path, default=None, help="run store root")
    cp.add_argument("--reports", type=Path, default=Path("reports"), help=REPORTS_HELP)
    add_guard_args(cp, "skip the MLflow view of new runs")
    cp.add_argument("--device", choices=DEVICES, default=None, help=DEVICE_HELP)
    cp.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_args(cp)

    for name, text, more in (
        (
            "show",
            "print a run's summary table",
            "The summary rows of RUN (sae, study, condition, metric, value, ci_low, ci_high, "
            "n), as stored in summary.json.",
        ),
        (
            "report",
            "rebuild a run's Markdown report from its store",
            "Write RUN's report (and its plots) again from the run store alone: nothing is "
            "recomputed or judged.",
        ),
    ):
        cmd = sub.add_parser(name, help=text, description=more)
        cmd.add_argument("run", help=RUN_REF)
        cmd.add_argument("--runs", type=Path, default=None, help="run store root")
        if name == "show":
            cmd.add_argument("--json", action="store_true", help="print the rows as JSON")
        else:
            cmd.add_argument("--reports", type=Path, default=Path("reports"), help=REPORTS_HELP)
            cmd.add_argument(
                "--template",
                choices=["full", "lab"],
                default="full",
                help="full: every table and plot (<run>.md, the default); lab: the tables a "
                "steering lab report asks for — SAE quality, top features per prompt, top-5 "
                "contrastive candidates, defence and attack tables, side effects on control "
                "prompts (<run>-lab.md)",
            )

    add_bench_parsers(sub)
    add_label_parser(sub)
    add_export_parser(sub)

    toy = sub.add_parser(
        "toy",
        help="the embedded toy world",
        description="build: rebuild the toy world (corpus, tokenizer, model, SAEs) from its "
        "seed, deterministically; check: measure the shipped one (SAE quality, steering).",
    )
    toy_sub = toy.add_subparsers(dest="toy_command", required=True, metavar="TOY_COMMAND")
    build = toy_sub.add_parser(
        "build",
        help="rebuild corpus, tokenizer, model and SAEs from the seed",
        description="Rebuild the toy world from its seed, deterministically: corpus, word-level "
        "tokenizer, model (trained on the corpus) and SAEs (trained on its activations).",
    )
    build.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: the package's shipped assets)",
    )
    toy_sub.add_parser(
        "check",
        help="measure the shipped toy world (SAE quality, steering)",
        description="Measure the shipped toy world: SAE quality on its held-out corpus and "
        "whether clamping its planted features steers neutral prompts to their concepts.",
    )
    return p
