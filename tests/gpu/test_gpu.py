"""Opt-in GPU checks (`nox -- -m gpu`): the same engine on a CUDA-resident model."""

from __future__ import annotations

import pytest
import torch

from harness.bench.sweep import bench_sweep
from harness.toy.probes import NEUTRAL_PROMPTS

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_sweep_benchmark_on_cuda() -> None:
    result = bench_sweep(device="cuda", repeats=3, say=lambda _: None)
    assert result.device == "cuda" and result.peak_memory_kind == "CUDA max_memory_allocated"
    assert result.speedup_vs_seed_loop > 1


def test_cuda_and_cpu_generations_agree() -> None:
    from harness.engine.backend import load_model, load_sae
    from harness.engine.generation import ClampTarget, GenRow, generate_rows
    from harness.spec import ToyModel, ToySAE

    outs = []
    for device in ("cpu", "cuda"):
        model = load_model(ToyModel(), device)
        sae = load_sae(ToySAE(), "relu", device)
        rows = [GenRow(p) for p in NEUTRAL_PROMPTS] + [GenRow(p, (20.0,)) for p in NEUTRAL_PROMPTS]
        outs.append(
            generate_rows(model, rows, ClampTarget(sae.sae, sae.hook_name, (9,)), max_new_tokens=12)
        )
    same = sum(a == b for a, b in zip(*outs, strict=True))
    assert same >= 0.9 * len(outs[0])


@pytest.mark.parametrize(
    ("shape", "arch", "width"),
    [("gpt2-small", "relu", 24576), ("gpt2-small", "topk", 24576), ("llama-2-7b", "relu", 65536)],
)
def test_real_size_benchmark_on_cuda(shape: str, arch: str, width: int) -> None:
    """The real-size sweep on a GPU: print the figures the README's speed section quotes."""
    from harness.bench.shapes import bench_shape

    result = bench_shape(shape, arch, width, "cuda", say=lambda _: None)
    print(result.as_dict())
    assert result.peak_memory_kind == "CUDA max_memory_allocated"
    assert result.speedup_vs_saelens > 1 and result.intervention_overhead < 1.5
