"""`harness bench sweep` reports consistent ratios (the targets are checked by running it)."""

from __future__ import annotations

import json

import pytest

from harness.cli import main


def test_bench_sweep_json_is_consistent(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "sweep", "--json", "--prompts", "2", "--new-tokens", "4", "--repeats", "1"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 2 * (5 + 1)
    assert result["speedup_vs_seed_loop"] == pytest.approx(
        result["seed_loop_s"] / result["harness_s"], rel=0.05
    )
    assert result["intervention_overhead"] == pytest.approx(
        result["harness_s"] / result["unclamped_s"], rel=0.05
    )
    assert result["peak_memory_mb"] > 0


def test_bench_at_gpt2_shape_times_every_path(capsys: pytest.CaptureFixture[str]) -> None:
    """GPT-2-small shape, random weights, a TopK SAE (the full-encode clamp): every path runs on
    the same rows and the ratios are those of the timings (sizes tiny: a smoke test of the real
    measurement, whose figures are in the README)."""
    args = ["bench", "sweep", "--json", "--shape", "gpt2-small", "--arch", "topk"]
    assert main([*args, "--sae-width", "2048", "--prompts", "1", "--new-tokens", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 1 * (5 + 1) and result["arch"] == "topk"
    for path in ("harness_s", "saelens_s", "seed_loop_s", "unclamped_s"):
        assert result[path] > 0
    assert result["speedup_vs_saelens"] == pytest.approx(
        result["saelens_s"] / result["harness_s"], rel=0.05
    )
    assert (
        0
        < result["fraction_of_matmul"]
        == pytest.approx(result["model_gflops"] / result["matmul_gflops"], rel=0.05)
    )


def test_the_llama_shape_needs_a_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sweep", "--shape", "llama-2-7b", "--device", "cpu"]) == 2
    assert "--device cuda" in capsys.readouterr().err
