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
