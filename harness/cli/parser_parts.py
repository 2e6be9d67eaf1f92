"""Parts of the ``harness`` argument parser shared by several commands (the executor's
options, the guards of a run: tracking and the judge budget) and the ``bench`` subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = [
    "add_bench_parsers",
    "add_executor_args",
    "add_guard_args",
    "add_run_tuning_args",
    "add_threads_arg",
]

JUDGE_KINDS = ["auto", "offline", "offline-keyword", "anthropic"]


def add_executor_args(cmd: argparse.ArgumentParser) -> None:
    """--executor and the Ray executor's options (run, nightly, compare)."""
    g = cmd.add_argument_group(
        "executor",
        "where the cells (SAE × study) are computed; the driver always writes the run store, "
        "judges and logs to MLflow",
    )
    g.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: in this process (default); ray: on actors of a Ray cluster, one per GPU or "
        "CPU slot, the model kept warm across cells (needs `pip install 'harness[ray]'`)",
    )
    g.add_argument(
        "--address",
        default=None,
        help="Ray: the cluster to join ('auto' for the one `ray start` runs here, or "
        "ray://HOST:10001); default: start a local cluster for this command",
    )
    g.add_argument(
        "--gpus-per-worker",
        type=float,
        default=None,
        help="Ray: GPUs per actor (default: 1 when the cluster has GPUs, else 0: one actor per "
        "CPU slot)",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Ray: actors to start (default: the cluster's GPUs / --gpus-per-worker, or its CPUs)",
    )
    g.add_argument(
        "--cell-retries",
        type=int,
        default=2,
        help="Ray: times a cell whose worker died is retried on a fresh actor (default: 2); "
        "then it is listed as failed and the next run resumes it",
    )


def add_guard_args(cmd: argparse.ArgumentParser, mlflow_help: str) -> None:
    """--no-mlflow, --require-tracking, --max-cost and --yes (run, nightly, compare)."""
    cmd.add_argument("--no-mlflow", action="store_true", help=mlflow_help)
    cmd.add_argument(
        "--require-tracking",
        action="store_true",
        help="refuse to start when the MLflow tracking server does not answer (default: warn, "
        "compute and store everything, and leave the view to `harness log RUN`)",
    )
    cmd.add_argument(
        "--max-cost",
        type=float,
        default=None,
        metavar="USD",
        help="the most this invocation may spend on paid judge calls (default: the spec's "
        "judge.max_cost_usd, else $10); a plan estimated above it is refused before compute",
    )
    cmd.add_argument(
        "--yes",
        action="store_true",
        help="start although the plan's estimate exceeds --max-cost (the run still stops, "
        "everything stored, when its spend reaches it)",
    )


def _at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return n


def add_threads_arg(cmd: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's CPU threads for the model (run and nightly)."""
    cmd.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads for the model (default: 1 below 50 M parameters, else every "
        "core; recorded in provenance)",
    )


def add_run_tuning_args(cmd: argparse.ArgumentParser) -> None:
    """A run's overrides and tuning: the judge kind, a partial run, threads, the API judge's
    batching, concurrency, timeout, retries and cache."""
    cmd.add_argument(
        "--judge",
        default=None,
        choices=JUDGE_KINDS,
        help="judge with this kind instead of the spec's judge.kind (outside the spec hash: the "
        "run keeps its id and its stored generations, only judgements this judge lacks are "
        "made, and it becomes the run's active judge)",
    )
    cmd.add_argument(
        "--limit",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="a quick partial run: only the first N prompts of every prompt set (the first N "
        "items of each condition); a run id of its own, marked partial in its report",
    )
    add_threads_arg(cmd)
    cmd.add_argument(
        "--judge-batch",
        action="store_true",
        help="Anthropic judge: send judgements as one Message Batch (half price; "
        "a crash while waiting resumes without resubmitting)",
    )
    cmd.add_argument(
        "--judge-concurrency",
        type=int,
        default=None,
        help="Anthropic judge: requests in flight at once (default: the spec's "
        "judge.concurrency, else 32)",
    )
    cmd.add_argument(
        "--judge-timeout",
        type=float,
        default=None,
        help="Anthropic judge: seconds per request (default: judge.timeout_s, else 60)",
    )
    cmd.add_argument(
        "--judge-retries",
        type=int,
        default=None,
        help="Anthropic judge: retries per request on 429/529/5xx/timeouts "
        "(default: judge.max_retries, else 6)",
    )
    cmd.add_argument(
        "--judge-cache",
        type=Path,
        default=None,
        help="judgement cache file (default: $HARNESS_JUDGE_CACHE or "
        "~/.cache/harness/judge-cache.sqlite)",
    )


def add_bench_parsers(sub: Any) -> None:
    """``harness bench sweep|judge|scale|threads|store``."""
    bench = sub.add_parser(
        "bench",
        help="benchmarks (ratios measured in one process)",
        description="sweep: clamp-sweep speed and intervention overhead; judge: the Anthropic "
        "judge's concurrency and cache against the loopback server; scale: the Ray executor "
        "against the local one; threads: torch threads, quiet and loaded; store: run-store "
        "cost per record. Each prints ratios.",
    )
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    sweep = bench_sub.add_parser(
        "sweep",
        help="clamp sweep: seed-style loop vs the harness engine vs no intervention",
        description="On the toy model: 5 levels × 32 prompts × 32 new tokens plus baselines, "
        "generated (a) one model.generate per prompt and level with a decode(encode(x)) hook, "
        "(b) by the harness in one batched KV-cached pass with per-row clamps, (c) batched with "
        "no intervention. Prints speedup_vs_seed_loop = a/b and intervention_overhead = b/c.",
    )
    sweep.add_argument("--device", default="cpu", help="cpu or cuda")
    sweep.add_argument(
        "--shape",
        default="toy",
        choices=["toy", "gpt2-small", "llama-2-7b"],
        help="toy: the shipped toy world; otherwise that architecture with random weights (no "
        "download), timed also against SAELens' own path (llama-2-7b: --device cuda only)",
    )
    sweep.add_argument(
        "--arch",
        default="relu",
        choices=["relu", "topk", "jumprelu"],
        help="the SAE architecture for --shape (default relu)",
    )
    sweep.add_argument("--sae-width", type=int, default=24576, help="SAE width for --shape")
    sweep.add_argument("--prompts", type=int, default=None, help="default: 32 toy, 8 shapes")
    sweep.add_argument("--new-tokens", type=int, default=None, help="default: 32 toy, 16 shapes")
    sweep.add_argument("--repeats", type=int, default=5, help="best of N for the batched runs")
    sweep.add_argument("--json", action="store_true", help="print the result as JSON")
    jb = bench_sub.add_parser(
        "judge",
        help="Anthropic judge vs one-at-a-time calls, against the loopback fake server",
        description="N judgements against the fake Anthropic server at a fixed latency: the "
        "harness judge (concurrent, cached) vs one-at-a-time calls (timed on a sample, scaled to "
        "N); then a second pass over the same items, which must make 0 API calls.",
    )
    jb.add_argument("--n", type=int, default=1000, help="judgements (default 1000)")
    jb.add_argument(
        "--latency-ms", type=float, default=200.0, help="the fake server's latency (default 200)"
    )
    jb.add_argument(
        "--concurrency", type=int, default=64, help="requests in flight at once (default 64)"
    )
    jb.add_argument(
        "--sequential-sample",
        type=int,
        default=25,
        help="one-at-a-time calls actually timed (default 25)",
    )
    jb.add_argument("--json", action="store_true", help="print the result as JSON")
    sc = bench_sub.add_parser(
        "scale",
        help="the Ray executor vs the local one on a toy suite (cells/s, driver overhead)",
        description="Runs a toy suite (two specs over both toy SAEs, 8 cells) from scratch on the "
        "local executor, then on the Ray executor (a local cluster unless --address). Prints "
        "cells per second for each, the worker's and the driver's seconds per cell, and how "
        "many workers one driver keeps busy (worker time / driver time per cell). Needs Ray.",
    )
    sc.add_argument("--workers", type=int, default=2, help="Ray actors (default 2)")
    sc.add_argument("--address", default=None, help="a running Ray cluster (default: start one)")
    sc.add_argument("--json", action="store_true", help="print the result as JSON")
    oj = bench_sub.add_parser(
        "offline-judge",
        help="the offline judges on natural text they were not calibrated on",
        description="Scores the 40 natural sentences of harness/judge/eval/golden_gate_natural."
        "jsonl (20 about the Golden Gate Bridge without its keywords, 12 near misses, 8 "
        "unrelated; kept apart from the toy-corpus calibration) with both offline judges on "
        "concept presence: recall at >= 2 and >= 1, near-miss and unrelated false positives, "
        "and the semantic margin's AUC.",
    )
    oj.add_argument("--json", action="store_true", help="print the result as JSON")
    th = bench_sub.add_parser(
        "threads",
        help="a spec end to end at auto, 1 and every-core torch threads, quiet and loaded",
        description="Times SPEC (default experiments/toy_specificity.py) as fresh `harness run` "
        "processes with --threads 1, every core, and the automatic choice, first on the quiet "
        "machine and then with a busy loop on each core; prints seconds, the threads each run "
        "recorded, and the automatic choice over the best (1.0: it picked the fastest).",
    )
    th.add_argument(
        "--spec", type=Path, default=Path("experiments/toy_specificity.py"), help="the spec to time"
    )
    th.add_argument("--no-load", action="store_true", help="skip the loaded machine")
    th.add_argument("--json", action="store_true", help="print the result as JSON")
    sb = bench_sub.add_parser(
        "store",
        help="run-store cost per record as runs grow (append, then parse and aggregate)",
        description="Writes a demo-like saturation sweep (generations, measures, judgements on "
        "three rubrics, next-token records) of each size into a temporary run store the way a "
        "run does, then aggregates it from a fresh reader. Prints seconds and microseconds per "
        "record for both: flat per-record cost across sizes means linear growth.",
    )
    sb.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help="records per run (default 10000 100000)",
    )
    sb.add_argument("--json", action="store_true", help="print the result as JSON")
