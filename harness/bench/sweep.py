"""Benchmarks, measured in one process and reported as ratios (DESIGN §10).

``harness bench sweep`` compares, on the same rows (levels × prompts plus unclamped baselines):

- the seed-style loop: one ``model.generate`` per prompt per level, with a hook that replaces the
  activation by ``decode(encode(x))`` with the clamp applied;
- the harness engine: one batched, KV-cached generation with per-row clamps (error term kept);
- the same batched rows generated with no intervention at all.
"""

from __future__ import annotations

import platform
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from harness.engine.backend import LoadedSAE, load_model, load_sae
from harness.engine.feature_stats import activation_stats
from harness.engine.features import contrastive_candidates
from harness.engine.generation import ClampTarget, GenRow, generate_rows
from harness.spec import ToyModel, ToySAE
from harness.toy.probes import GOLDEN_GATE
from harness.toy.world import eval_documents

__all__ = ["SweepBench", "bench_judge", "bench_sweep"]


@dataclass(frozen=True)
class SweepBench:
    """Results of ``harness bench sweep``."""

    device: str
    prompts: int
    levels: int
    new_tokens: int
    rows: int
    seed_loop_s: float
    harness_s: float
    unclamped_s: float
    speedup_vs_seed_loop: float
    intervention_overhead: float
    peak_memory_mb: float
    peak_memory_kind: str
    torch_threads: int
    machine: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _best_of(repeats: int, fn: Callable[[], object]) -> float:
    """The fastest of ``repeats`` timed calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _seed_loop(
    model: Any,
    sae: LoadedSAE,
    feature: int,
    prompts: list[str],
    values: list[float | None],
    new_tokens: int,
) -> None:
    for prompt in prompts:
        for value in values:
            hooks = []
            if value is not None:

                def hook(x: torch.Tensor, hook: Any, v: float = value) -> torch.Tensor:
                    f = sae.sae.encode(x)
                    f[..., feature] = v
                    return sae.sae.decode(f)  # type: ignore[no-any-return]

                hooks = [(sae.hook_name, hook)]
            with model.hooks(fwd_hooks=hooks):
                model.generate(prompt, max_new_tokens=new_tokens, do_sample=False, verbose=False)


def _peak_memory(device: str) -> tuple[float, str]:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20, "CUDA max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


@torch.no_grad()
def bench_sweep(
    device: str = "cpu",
    n_prompts: int = 32,
    levels: tuple[float, ...] = (0, 1, 5, 10, 50),
    new_tokens: int = 32,
    repeats: int = 5,
    say: Callable[[str], None] = print,
) -> SweepBench:
    """Time the seed-style loop, the harness sweep and plain generation on the toy world."""
    model = load_model(ToyModel(), device)
    sae = load_sae(ToySAE(name="relu-256"), "toy/relu-256", device)
    docs = eval_documents()
    feature = contrastive_candidates(model, sae, GOLDEN_GATE)[0].index
    max_act = float(activation_stats(model, sae, docs, "toy").max[feature])
    prompts = [" ".join(doc.split()[:6]) for doc in docs[:n_prompts]]
    values: list[float | None] = [None, *(level * max_act for level in levels)]
    rows = [GenRow(p, None if v is None else (v,)) for v in values for p in prompts]
    plain_rows = [GenRow(r.prompt) for r in rows]
    target = ClampTarget(sae.sae, sae.hook_name, (feature,))

    def harness_sweep() -> object:
        return generate_rows(model, rows, target, max_new_tokens=new_tokens)

    def unclamped() -> object:
        return generate_rows(model, plain_rows, None, max_new_tokens=new_tokens)

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    harness_sweep()  # warm-up, and the memory peak is the sweep's
    peak, peak_kind = _peak_memory(device)
    say(f"harness sweep: {len(rows)} rows × {new_tokens} tokens")
    # interleaved, best of N each, so drift in machine load hits both alike
    pairs = [(_best_of(1, harness_sweep), _best_of(1, unclamped)) for _ in range(repeats)]
    t_harness = min(p[0] for p in pairs)
    t_plain = min(p[1] for p in pairs)
    say(f"seed-style loop: {len(rows)} generate calls")
    t_seed = _best_of(1, lambda: _seed_loop(model, sae, feature, prompts, values, new_tokens))
    return SweepBench(
        device=device,
        prompts=len(prompts),
        levels=len(levels),
        new_tokens=new_tokens,
        rows=len(rows),
        seed_loop_s=round(t_seed, 3),
        harness_s=round(t_harness, 4),
        unclamped_s=round(t_plain, 4),
        speedup_vs_seed_loop=round(t_seed / t_harness, 1),
        intervention_overhead=round(t_harness / t_plain, 3),
        peak_memory_mb=round(peak, 1),
        peak_memory_kind=peak_kind,
        torch_threads=torch.get_num_threads(),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
    )


def _fake_anthropic() -> tuple[Any, Any]:
    """The loopback Anthropic fake (:mod:`harness.judge.testing`), shipped with the package."""
    from harness.judge.testing import FakeAnthropic, FaultPlan

    return FakeAnthropic, FaultPlan


def bench_judge(
    n: int = 1000,
    latency_s: float = 0.2,
    concurrency: int = 64,
    sequential_sample: int = 25,
) -> dict[str, Any]:
    """The Anthropic judge against the loopback fake server: speed and the cache's second pass."""
    import tempfile
    from pathlib import Path

    import anthropic

    from harness.judge.anthropic_judge import AnthropicJudge
    from harness.judge.base import JudgeRequest
    from harness.judge.cache import JudgeCache
    from harness.judge.rubric import load_rubric

    FakeAnthropic, FaultPlan = _fake_anthropic()

    rubric = load_rubric("concept_presence")
    requests = [
        JudgeRequest(text=f"item {i}: the fog over the golden gate bridge", concept="Golden Gate")
        for i in range(n)
    ]
    plan = FaultPlan(latency_s=latency_s)
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic(plan) as fake:
        judge = AnthropicJudge(
            rubric,
            cache=JudgeCache(Path(tmp) / "cache.sqlite"),
            max_concurrency=concurrency,
            base_url=fake.base_url,
            api_key="bench-key",
        )
        client = anthropic.Anthropic(api_key="bench-key", base_url=fake.base_url)
        start = time.perf_counter()
        for req in requests[:sequential_sample]:  # the one-at-a-time loop, on a sample
            client.messages.create(
                model=judge.model,
                max_tokens=judge.max_tokens,
                messages=[{"role": "user", "content": judge.render(req)}],
            )
        per_call = (time.perf_counter() - start) / sequential_sample
        calls_before = fake.state.message_calls
        start = time.perf_counter()
        first = judge.judge(requests)
        harness_s = time.perf_counter() - start
        first_calls = fake.state.message_calls - calls_before
        start = time.perf_counter()
        second = judge.judge(requests)
        second_s = time.perf_counter() - start
        second_calls = fake.state.message_calls - calls_before - first_calls
    return {
        "judgements": n,
        "latency_ms": latency_s * 1000,
        "concurrency": concurrency,
        "sequential_s_per_call": round(per_call, 4),
        "sequential_s_estimated": round(per_call * n, 2),
        "sequential_sample": sequential_sample,
        "harness_s": round(harness_s, 3),
        "speedup_vs_sequential": round(per_call * n / harness_s, 1),
        "first_pass_api_calls": first_calls,
        "scored": sum(j.scored for j in first),
        "second_pass_s": round(second_s, 3),
        "api_calls": second_calls,
        "second_pass_cached": sum(j.cached for j in second),
    }
