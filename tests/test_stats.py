"""Paired tests, Holm correction, trend test and prompt splits against closed forms and scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from harness.analysis.stats import (
    holm,
    paired_difference,
    signflip_pvalue,
    split_halves,
    trend_test,
)


def test_holm_matches_the_step_down_definition() -> None:
    p = [0.01, 0.04, 0.03, float("nan"), 0.5]
    # sorted valid p: 0.01·4, 0.03·3, 0.04·2 (raised to the running max), 0.5·1
    assert holm(p)[:3] == pytest.approx([0.04, 0.09, 0.09])
    assert np.isnan(holm(p)[3]) and holm(p)[4] == pytest.approx(0.5)
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_signflip_is_exact_for_small_n() -> None:
    d = np.array([1.0, 2.0, -0.5, 3.0, 1.5])
    observed = abs(d.mean())
    flips = [abs((np.array(s) * d).mean()) for s in itertools.product([1, -1], repeat=5)]
    expected = np.mean([f >= observed - 1e-12 for f in flips])
    assert signflip_pvalue(d, np.random.default_rng(0)) == pytest.approx(expected)
    # large n: Monte Carlo, close to the normal approximation of a clear effect
    big = np.random.default_rng(1).normal(1.0, 1.0, 40)
    assert signflip_pvalue(big, np.random.default_rng(2)) < 0.001


def test_paired_difference_uses_wilcoxon_and_a_paired_bootstrap() -> None:
    rng = np.random.default_rng(0)
    a = [0, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    b = [3, 2, 3, 3, 1, 3, 2, 3, 3, 2]
    test = paired_difference(a, b, rng, "wilcoxon")
    d = np.array(b) - np.array(a)
    assert test.p_value == pytest.approx(stats.wilcoxon(d, zero_method="zsplit").pvalue)
    assert test.mean_difference.value == pytest.approx(d.mean())
    assert test.mean_difference.ci_low <= d.mean() <= test.mean_difference.ci_high
    assert test.mean_difference.n == 10
    same = paired_difference([1, 2, 3], [1, 2, 3], rng)
    assert same.p_value == 1.0 and same.mean_difference.value == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([1, 2], [1], rng)


def test_trend_test_detects_increase_and_not_decrease() -> None:
    rng = np.random.default_rng(3)
    rising = np.arange(5)[None, :] + rng.normal(0, 0.5, (12, 5))
    _, p_up = trend_test(rising)
    _, p_down = trend_test(rising[:, ::-1])
    assert p_up < 0.001 and p_down > 0.5
    assert trend_test(np.ones((6, 4)))[1] == 1.0  # no variation: no evidence
    assert np.isnan(trend_test(np.ones((1, 4)))[1])  # one prompt: undefined


def test_split_halves_is_seeded_and_disjoint() -> None:
    a, b = split_halves(17, np.random.default_rng(5))
    assert (a, b) == split_halves(17, np.random.default_rng(5))
    assert len(a) == 9 and len(b) == 8 and not set(a) & set(b)
    assert sorted(a + b) == list(range(17))


def test_the_signflip_test_is_exact_up_to_20_pairs() -> None:
    import itertools

    from harness.analysis.stats import signflip_method, signflip_pvalue

    rng = np.random.default_rng(5)
    d = rng.normal(0.4, 1.0, 14)
    every = [abs(np.mean(np.array(s) * d)) for s in itertools.product((-1, 1), repeat=14)]
    want = np.mean([m >= abs(d.mean()) - 1e-12 for m in every])
    assert signflip_pvalue(d, rng) == pytest.approx(want, abs=1e-12)
    # n = 20 is still exact: a multiple of 2^-20, the same on every call
    d20 = rng.normal(0.4, 1.0, 20)
    p = signflip_pvalue(d20, rng)
    assert p == signflip_pvalue(d20, np.random.default_rng(99))
    assert (p * 2**20) == pytest.approx(round(p * 2**20), abs=1e-6)
    assert "exact" in signflip_method(20) and "Monte Carlo" in signflip_method(21)
