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
