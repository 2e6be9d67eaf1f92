"""Developer tools: ``harness bench`` and ``harness toy``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness.errors import SpecError

__all__ = ["cmd_bench", "cmd_toy"]


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench_command == "store":
        from harness.bench.store import bench_store

        results = [r.as_dict() for r in bench_store(tuple(args.sizes))]
        if args.json:
            print(json.dumps(results, indent=1))
            return 0
        for r in results:
            print(
                f"{r['records']:>8} records: append {r['append_s']:.2f} s "
                f"({r['append_us_per_record']} µs/record), aggregate {r['aggregate_s']:.2f} s "
                f"({r['aggregate_us_per_record']} µs/record), {r['summary_rows']} summary rows"
            )
        return 0
    if args.bench_command == "threads":
        from harness.bench.threads import bench_threads

        data = bench_threads(args.spec, not args.no_load, (lambda _: None) if args.json else print)
        if args.json:
            print(json.dumps(data, indent=1))
        else:
            ratios = ", ".join(f"{k} {v}" for k, v in sorted(data["auto_over_best"].items()))
            print(f"auto over the best setting: {ratios} ({data['cores']} cores)")
        return 0
    if args.bench_command == "offline-judge":
        from dataclasses import asdict

        from harness.judge.natural_eval import evaluate

        data = {e.judge: asdict(e) for e in (evaluate(True), evaluate(False))}
        if args.json:
            print(json.dumps(data, indent=1))
            return 0
        for e in data.values():
            print(
                f"{e['judge']}: recall {e['recall_2']:.2f} at >= 2 ({e['recall_1']:.2f} at >= 1) "
                f"of {e['n_on']} on-concept; near misses >= 2 {e['near_miss_fp_2']:.2f} "
                f"(>= 1 {e['near_miss_fp_1']:.2f}) of {e['n_near']}; unrelated >= 1 "
                f"{e['unrelated_fp_1']:.2f} of {e['n_unrelated']}; margin AUC {e['margin_auc']:.2f}"
            )
        return 0
    if args.bench_command == "scale":
        from harness.bench.scale import bench_scale

        return _print(bench_scale(args.workers, args.address), args.json)
    from harness.bench.sweep import bench_judge, bench_sweep
    from harness.engine.backend import resolve_device

    if args.bench_command == "judge":
        data = bench_judge(
            n=args.n,
            latency_s=args.latency_ms / 1000,
            concurrency=args.concurrency,
            sequential_sample=args.sequential_sample,
        )
        return _print(data, args.json)

    device = resolve_device(args.device)
    say = (lambda _: None) if args.json else print
    if args.shape != "toy":
        from harness.bench.shapes import bench_shape

        try:
            shaped = bench_shape(
                args.shape,
                args.arch,
                args.sae_width,
                device,
                n_prompts=args.prompts or 8,
                new_tokens=args.new_tokens or 16,
                say=say,
            )
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        data = shaped.as_dict()
        if args.json:
            print(json.dumps(data, indent=1))
        else:
            for key, value in data.items():
                print(f"{key:>24}: {value}")
        return 0
    result = bench_sweep(
        device=device,
        n_prompts=args.prompts or 32,
        new_tokens=args.new_tokens or 32,
        repeats=args.repeats,
        say=(lambda _: None) if args.json else print,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
        return 0
    for key, value in result.as_dict().items():
        print(f"{key:>24}: {value}")
    return 0


def _print(data: dict[str, Any], as_json: bool) -> int:
    """A benchmark's figures: JSON, or one aligned ``name: value`` line each."""
    if as_json:
        print(json.dumps(data, indent=1))
    else:
        width = max(map(len, data), default=0)
        for key, value in data.items():
            print(f"{key:>{width}}: {value}")
    return 0


def cmd_toy(args: argparse.Namespace) -> int:
    from harness.toy.world import ASSETS

    if args.toy_command == "build":
        from harness.toy.build import build

        out = build(args.out or ASSETS)
        print(f"toy world written to {out}")
        return 0
    return toy_check()


def toy_check() -> int:
    from harness.engine.backend import load_model, load_sae
    from harness.engine.sae_quality import measure_quality, quality_values
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
