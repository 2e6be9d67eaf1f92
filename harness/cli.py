"""The ``harness`` command line: a thin layer over the runner, the store and the toy builder.

Exit codes: 0 success; 1 a run failed (or too many judgements were unscored); 2 a user error (bad
spec, bad arguments, unloadable model, missing run); 130 interrupted. User errors print one line,
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from harness.errors import HarnessError, SpecError
from harness.store import default_runs_root

__all__ = ["main"]

EPILOG = """exit codes: 0 ok; 1 run failed (or too many unscored judgements); 2 user error
(bad spec or arguments, unloadable model, missing run); 130 interrupted (resume by re-running)

examples:
  harness run experiments/toy_golden_gate.py     run the toy demo end to end
  harness validate experiments/toy_golden_gate.py
  harness plan experiments/toy_golden_gate.py    the work matrix and its cost
  harness list                                   the runs in ./runs
  harness rescore latest                         re-judge stored outputs, no regeneration
  harness show latest --json                     summary rows of the newest run
  harness report latest                          rebuild its Markdown report
  harness toy build --out /tmp/toy               rebuild the toy world from its seed
  harness bench sweep --json                     clamp-sweep speed and overhead ratios
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
    run.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="rows per forward pass (default: as many as fit a 1 GiB budget)",
    )
    run.add_argument("--no-mlflow", action="store_true", help="skip the MLflow view")
    run.add_argument(
        "--judge-batch",
        action="store_true",
        help="Anthropic judge: send judgements as one Message Batch (half price; "
        "a crash while waiting resumes without resubmitting)",
    )
    run.add_argument(
        "--judge-concurrency",
        type=int,
        default=32,
        help="Anthropic judge: requests in flight at once (default 32)",
    )
    run.add_argument(
        "--judge-cache",
        type=Path,
        default=None,
        help="judgement cache file (default: $HARNESS_JUDGE_CACHE or "
        "~/.cache/harness/judge-cache.sqlite)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    val = sub.add_parser("validate", help="check a spec without loading any model")
    val.add_argument("spec", type=Path)

    pl = sub.add_parser(
        "plan",
        help="print the work matrix and what a run will cost",
        description="Expand SPEC into SAE × study × condition × prompt work items and print the "
        "counts: generations, forward passes, judge calls, estimated judge cost.",
    )
    pl.add_argument("spec", type=Path)
    pl.add_argument("--batch-size", type=int, default=64, help="rows per forward pass")
    pl.add_argument("--json", action="store_true", help="print the plan as JSON")

    ls = sub.add_parser("list", help="list the runs in the run store")
    ls.add_argument("--runs", type=Path, default=None, help="run store root")

    rs = sub.add_parser(
        "rescore",
        help="re-judge a run's stored outputs without regenerating",
        description="Judge every stored generation of RUN with the given rubric (items already "
        "judged by the same judge and rubric are not judged again), make that the run's active "
        "judgement, and rebuild its summary and report. No model is loaded.",
    )
    rs.add_argument("run", help="run id, run directory, or 'latest'")
    rs.add_argument("--rubric", default=None, help="rubric name (default: the spec's)")
    rs.add_argument("--runs", type=Path, default=None, help="run store root")
    rs.add_argument("--reports", type=Path, default=Path("reports"))

    rg = sub.add_parser(
        "regress",
        help="gate a run's headline metrics against an accepted baseline (exit 1 on regression)",
        description="Compare RUN's headline metrics (the spec's `regression` tolerances; default: "
        "concept and fluency scores may not fall by more than 0.5, explained variance and "
        "CE-loss score by more than 0.05) with the baseline, paired by prompt (by token "
        "sequence for SAE quality). A check regresses when its mean worsens by more than "
        "the tolerance and the 95% bootstrap CI of the paired difference excludes 0. Writes "
        "<reports>/<run>-regression.md; exit 0 = OK, 1 = regressed.",
    )
    rg.add_argument("run", help="run id, run directory, or 'latest'")
    rg.add_argument(
        "--baseline",
        default=None,
        help="a tag given to `harness accept`, a run id or a run directory "
        "(default: the tag accepted/<experiment name>)",
    )
    rg.add_argument("--runs", type=Path, default=None, help="run store root (holds the tags)")
    rg.add_argument("--reports", type=Path, default=Path("reports"))

    ac = sub.add_parser(
        "accept",
        help="tag a finished run as the accepted baseline",
        description="Record RUN as the baseline under TAG (default accepted/<experiment name>) "
        "in <runs>/baselines.json, and tag its MLflow run harness.accepted_as=TAG.",
    )
    ac.add_argument("run", help="run id, run directory, or 'latest'")
    ac.add_argument("--tag", default=None, help="baseline tag (default: accepted/<name>)")
    ac.add_argument("--runs", type=Path, default=None, help="run store root (holds the tags)")

    ni = sub.add_parser(
        "nightly",
        help="run every spec tagged 'nightly' in a folder and gate each against its baseline",
        description="For every *.py spec in FOLDER whose tags include 'nightly': run it from "
        "scratch into <runs>/nightly/<UTC time>/ (judgements already paid for come from the "
        "judge cache), then `regress` it against accepted/<experiment name> when that baseline "
        "exists. Exit 1 if any spec fails or regresses.",
    )
    ni.add_argument("folder", type=Path, help="folder of experiment specs")
    ni.add_argument("--runs", type=Path, default=None, help="run store root (holds the tags)")
    ni.add_argument("--reports", type=Path, default=Path("reports"))
    ni.add_argument("--no-mlflow", action="store_true", help="skip the MLflow view")
    ni.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None)

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
    cp.add_argument("--reports", type=Path, default=Path("reports"))
    cp.add_argument("--no-mlflow", action="store_true", help="skip the MLflow view of new runs")
    cp.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None)
    cp.add_argument("--quiet", action="store_true", help="no progress bars")

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
            cmd.add_argument(
                "--template",
                choices=["full", "lab"],
                default="full",
                help="full: every table and plot (<run>.md, the default); lab: the tables a "
                "steering lab report asks for — SAE quality, top features per prompt, top-5 "
                "contrastive candidates, defence and attack tables, side effects on control "
                "prompts (<run>-lab.md)",
            )

    bench = sub.add_parser("bench", help="benchmarks (ratios measured in one process)")
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
    sweep.add_argument("--prompts", type=int, default=32)
    sweep.add_argument("--new-tokens", type=int, default=32)
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
    jb.add_argument("--latency-ms", type=float, default=200.0)
    jb.add_argument("--concurrency", type=int, default=64)
    jb.add_argument(
        "--sequential-sample",
        type=int,
        default=25,
        help="one-at-a-time calls actually timed (default 25)",
    )
    jb.add_argument("--json", action="store_true", help="print the result as JSON")

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
            judge_batch=args.judge_batch,
            judge_concurrency=args.judge_concurrency,
            judge_cache=args.judge_cache,
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


def _cmd_plan(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from harness.loading import load_spec
    from harness.plan import plan
    from harness.validate import validate_static

    exp = load_spec(args.spec)
    validate_static(exp)
    p = plan(exp, batch_size=args.batch_size)
    offline = exp.judge.effective_kind() == "offline"
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
            "judge": "offline" if offline else f"anthropic:{exp.judge.model}",
            "judge_cost_usd": cost_usd,
        }
        print(json.dumps(data, indent=1))
        return 0
    print(f"{exp.name}: spec hash {exp.spec_hash()[:12]}, batch size {args.batch_size}")
    head = ["sae", "study", "kind", "conditions", "prompts", "generations", "fwd passes", "judge"]
    w_sae = max(len(head[0]), *(len(r.sae) for r in p.rows)) + 2
    w_study = max(len(head[1]), *(len(r.study) for r in p.rows)) + 2
    print(
        f"{head[0]:<{w_sae}}{head[1]:<{w_study}}{head[2]:<14}"
        + "".join(f"{h:>12}" for h in head[3:])
    )
    for r in p.rows:
        kind = r.kind + ("" if r.runnable else " *")
        nums = (r.conditions, r.prompts, r.generations, r.forward_passes, r.judge_calls)
        print(f"{r.sae:<{w_sae}}{r.study:<{w_study}}{kind:<14}" + "".join(f"{n:>12}" for n in nums))
    t = p.totals()
    print(
        f"total: {t['generations']} generations, {t['forward_passes']} forward passes, "
        f"{t['judge_calls']} judge calls; estimated judge cost {cost}"
    )
    if any(not r.runnable for r in p.rows):
        print("* validates, but this version has no runner for this study kind yet")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from harness.store import RunStore

    root = args.runs or default_runs_root()
    runs = sorted(root.glob("*/spec.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        print(f"no runs under {root}")
        return 0
    print(f"{'run':<40}{'status':<10}{'generations':>12}{'judgements':>12}")
    for spec_path in runs:
        store = RunStore(spec_path.parent)
        status_path = store.dir / "status.json"
        status = json.loads(status_path.read_text())["status"] if status_path.exists() else "?"
        n_gen = len(store.done_keys("generation"))
        n_judged = len(store.done_keys("judgement"))
        print(f"{store.run_id:<40}{status:<10}{n_gen:>12}{n_judged:>12}")
    return 0


def _cmd_rescore(args: argparse.Namespace) -> int:
    from harness.runner import rescore
    from harness.store import RunStore

    store = RunStore.open(args.run, args.runs or default_runs_root())
    made, report = rescore(store, args.rubric, args.reports)
    print(f"{made} new judgements; report: {report}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from harness.store import RunStore

    store = RunStore.open(args.run, args.runs or default_runs_root())
    rows = store.read_json("summary.json")
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    cols = ("sae", "study", "condition", "metric")
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) + 2 for c in cols}
    print("".join(f"{c:<{width[c]}}" for c in cols) + f"{'value':>8}  {'95% CI':<16}n")
    for r in rows:
        ci = f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        print(
            "".join(f"{r[c]!s:<{width[c]}}" for c in cols) + f"{r['value']:>8.3f}  {ci:<16}{r['n']}"
        )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.aggregate import summarise
    from harness.report.markdown import write_report
    from harness.store import RunStore

    store = RunStore.open(args.run, args.runs or default_runs_root())
    summary = summarise(store, store.experiment().seed)
    path = write_report(store, summary, args.reports, args.template)
    print(f"report: {path}")
    return 0


def _regress_one(store: Any, baseline_ref: str | None, runs: Path, reports: Path) -> int:
    """Regress one run against its baseline; prints a verdict line; returns the exit code."""
    from harness.notebook import load_run
    from harness.regress import default_tag, regress, resolve_baseline, write_regression_report

    current = load_run(store.dir, runs)
    ref = baseline_ref or default_tag(current.experiment.name)
    base_store = resolve_baseline(ref, runs)
    baseline = load_run(base_store.dir, runs)
    checks = regress(current, baseline, current.experiment.seed)
    path = write_regression_report(
        checks, current, baseline, reports / f"{current.run_id}-regression.md"
    )
    failed = [c for c in checks if c.regressed]
    verdict = "REGRESSED" if failed else "ok"
    print(
        f"{current.run_id}: {verdict} vs {baseline.run_id} ({len(failed)}/{len(checks)} "
        f"checks regressed) → {path}"
    )
    for c in failed:
        print(
            f"  {c.sae} {c.study} {c.condition} {c.metric}: {c.baseline:.3f} → {c.current:.3f}"
            + (f" ({c.note})" if c.note else "")
        )
    return 1 if failed else 0


def _cmd_regress(args: argparse.Namespace) -> int:
    from harness.store import RunStore

    runs = args.runs or default_runs_root()
    return _regress_one(RunStore.open(args.run, runs), args.baseline, runs, args.reports)


def _cmd_accept(args: argparse.Namespace) -> int:
    from harness.regress import accept
    from harness.store import RunStore

    runs = args.runs or default_runs_root()
    store = RunStore.open(args.run, runs)
    tag = accept(store, runs, args.tag)
    print(f"accepted {store.run_id} as {tag}")
    return 0


def _cmd_nightly(args: argparse.Namespace) -> int:
    import time

    from harness.loading import load_spec
    from harness.regress import baseline_tags, default_tag
    from harness.runner import RunOptions, run_experiment

    runs = args.runs or default_runs_root()
    if not args.folder.is_dir():
        raise HarnessError(f"{args.folder} is not a folder of specs")
    night = runs / "nightly" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    signal.signal(signal.SIGTERM, _on_sigterm)
    specs = sorted(args.folder.glob("*.py"))
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
        try:
            result = run_experiment(
                exp,
                RunOptions(
                    runs_root=night,
                    reports_dir=args.reports,
                    device=args.device,
                    show_progress=False,
                    log_to_mlflow=not args.no_mlflow,
                ),
                say=lambda _: None,
            )
        except HarnessError as exc:
            print(f"{exp.name}: run failed: {exc}", file=sys.stderr)
            worst = 1
            continue
        if default_tag(exp.name) not in baseline_tags(runs):
            print(
                f"{result.store.run_id}: no baseline yet; accept it with "
                f"`harness accept {result.store.dir} --runs {runs}`"
            )
            continue
        worst = max(worst, _regress_one(result.store, None, runs, args.reports))
    print(f"nightly: {ran} spec(s) tagged nightly in {args.folder}; runs in {night}")
    return worst


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import (
        checkpoints_of,
        compare,
        comparison_name,
        excludes_zero,
        match_features,
        sae_from_arg,
    )
    from harness.loading import load_spec
    from harness.notebook import load_run
    from harness.report.compare import write_comparison
    from harness.runner import RunOptions, run_experiment
    from harness.spec import Experiment

    runs_root = args.runs or default_runs_root()
    saes = tuple(sae_from_arg(a) for a in args.sae) if args.sae else None
    signal.signal(signal.SIGTERM, _on_sigterm)
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
    for t in targets:
        if isinstance(t, Experiment):
            options = RunOptions(
                runs_root=runs_root,
                reports_dir=args.reports,
                device=args.device,
                show_progress=not args.quiet,
                log_to_mlflow=not args.no_mlflow,
            )
            t = load_run(run_experiment(t, options).store.dir, runs_root)
        loaded.append(t)
    checkpoints = checkpoints_of(loaded)
    rows = compare(checkpoints, loaded[0].experiment.seed)
    matches, note = match_features(checkpoints)
    path = write_comparison(
        checkpoints, rows, matches, note, args.reports / f"{comparison_name(checkpoints)}.md"
    )
    print(f"comparison of {len(checkpoints)} checkpoints (reference {checkpoints[0].name}): {path}")
    for row in rows:
        for c, d in zip(checkpoints[1:], row.differences, strict=True):
            if excludes_zero(d):
                print(
                    f"  {c.name} {row.study} {row.condition} {row.metric}: "
                    f"{d.value:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}] vs reference"
                )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from harness.backend import resolve_device
    from harness.bench import bench_judge, bench_sweep

    if args.bench_command == "judge":
        data = bench_judge(
            n=args.n,
            latency_s=args.latency_ms / 1000,
            concurrency=args.concurrency,
            sequential_sample=args.sequential_sample,
        )
        if args.json:
            print(json.dumps(data, indent=1))
        else:
            for key, value in data.items():
                print(f"{key:>24}: {value}")
        return 0

    device = resolve_device(args.device)
    result = bench_sweep(
        device=device,
        n_prompts=args.prompts,
        new_tokens=args.new_tokens,
        repeats=args.repeats,
        say=(lambda _: None) if args.json else print,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
        return 0
    for key, value in result.as_dict().items():
        print(f"{key:>24}: {value}")
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
    from harness.sae_quality import measure_quality, quality_values
    from harness.spec import SAEQualityEval, ToyModel, ToySAE
    from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS
    from harness.toy.quality import steering_check
    from harness.toy.world import eval_documents, toy_sae_names

    model = load_model(ToyModel())
    docs = eval_documents()
    every = SAEQualityEval(n_sequences=4096)  # every sequence the held-out corpus gives
    print(
        "| SAE | explained variance | L0 | dead | CE-loss score | GG feature "
        "| mentions unclamped | at 10x max |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in toy_sae_names():
        sae = load_sae(ToySAE(name=name), name)
        record = measure_quality(model, sae, docs, every)
        q = quality_values(record)
        s = steering_check(model, sae, GOLDEN_GATE, list(NEUTRAL_PROMPTS), docs)
        print(
            f"| {name} | {q['explained_variance']:.3f} | {q['l0']:.1f} | "
            f"{q['dead_fraction']:.1%} | {q['ce_loss_score']:.3f} | {s.feature} "
            f"| {s.baseline_mention_rate:.0%} | {s.clamped_mention_rate:.0%} |"
        )
    print(
        f"(sae_lens.evals metrics on all {record['n_sequences']} sequences of "
        f"{record['context_size']} tokens of the held-out corpus; {s.n_prompts} neutral prompts, "
        "20 new tokens each)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    args = _parser().parse_args(argv)
    handlers = {
        "run": _cmd_run,
        "validate": _cmd_validate,
        "plan": _cmd_plan,
        "list": _cmd_list,
        "rescore": _cmd_rescore,
        "show": _cmd_show,
        "report": _cmd_report,
        "toy": _cmd_toy,
        "bench": _cmd_bench,
        "regress": _cmd_regress,
        "accept": _cmd_accept,
        "nightly": _cmd_nightly,
        "compare": _cmd_compare,
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
