"""`harness bench sweep` reports consistent ratios (the targets are checked by running it)."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_bench_threads_times_each_setting_and_each_run_used_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    spec = tmp_path / "tiny.py"
    spec.write_text(
        "from harness import Experiment, SaturationClamp, ToySAE\n"
        "from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS\n"
        "def spec():\n"
        "    return Experiment(name='tiny', saes=(ToySAE(name='relu-256'),), sae_quality=None,\n"
        "        studies=(SaturationClamp(name='s', feature=GOLDEN_GATE, levels=(0, 5),\n"
        "                                 prompts=NEUTRAL_PROMPTS[:2], controls=()),))\n"
    )
    assert main(["bench", "threads", "--spec", str(spec), "--no-load", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    cores = os.cpu_count() or 1
    rows = {r["threads"]: r for r in data["rows"]}
    assert set(rows) == {"auto", "1", str(cores)} and all(
        r["load"] == "quiet" for r in rows.values()
    )
    assert rows["1"]["recorded"]["n"] == 1 and rows[str(cores)]["recorded"]["n"] == cores
    assert rows["auto"]["recorded"]["n"] == 1  # the toy model is below 50 M parameters
    assert all(r["seconds"] > 0 for r in rows.values())
    assert data["auto_over_best"]["quiet"] >= 1.0
