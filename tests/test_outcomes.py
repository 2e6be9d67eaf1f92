"""Per-prompt outcomes: shares toward / unmoved / away with Wilson intervals (checked against
scipy's), the n for 80% power (checked against the exact power of a paired t-test from the
noncentral t), and the report's warnings where the wrong-way share may be large or n small."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from harness.analysis.outcomes import n_for_power, outcome_rows, wilson_interval
from harness.views.report.outcomes import outcomes_section


@pytest.mark.parametrize(("k", "n"), [(0, 16), (3, 16), (8, 16), (16, 16), (1, 5), (37, 120)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    ci = stats.binomtest(k, n).proportion_ci(method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def _paired_t_power(n: int, d: float) -> float:
    df = n - 1
    crit = stats.t.ppf(0.975, df)
    nc = d * math.sqrt(n)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_n_for_80_percent_power_gives_80_percent_power(seed: int) -> None:
    rng = np.random.default_rng(seed)
    diffs = list(rng.normal(0.6, 1.0, 16))
    n = n_for_power(diffs)
    d = abs(np.mean(diffs)) / np.std(diffs, ddof=1)
    assert _paired_t_power(int(n), d) >= 0.79  # the approximation is within a point
    assert _paired_t_power(int(n) - 2, d) < 0.8
    assert math.isinf(n_for_power([1.0, -1.0, 1.0, -1.0]))  # no effect
    assert math.isnan(n_for_power([2.0, 2.0, 2.0]))  # no spread: any n detects it


def test_a_level_that_moves_some_prompts_away_is_flagged(tmp_path: Path) -> None:
    base = dict.fromkeys(range(16), 1)
    moved = {i: (3 if i < 8 else 1 if i < 11 else 0) for i in range(16)}  # 5 of 16 away
    concept = {("s", "t", "baseline"): base, ("s", "t", "5x"): moved}
    rows = outcome_rows("s", "t", ["baseline", "5x"], concept)
    conds: dict[str, dict[str, dict[str, float]]] = {}
    for r in rows:
        conds.setdefault(r["condition"], {})[r["metric"]] = r
    shares = [conds["5x"][m]["value"] for m in ("toward_share", "unmoved_share", "away_share")]
    assert shares == [8 / 16, 3 / 16, 5 / 16]
    assert conds["5x"]["away_share"]["ci_high"] > 0.2
    lines = "\n".join(outcomes_section(conds, ["baseline", "5x"], tmp_path, "s", "t"))
    assert "31% [14%, 56%] (5/16)" in lines
    assert "**Warning:** at 5x up to 56% of prompts may move away" in lines
    assert (tmp_path / "s-t-outcomes.png").stat().st_size > 5_000
