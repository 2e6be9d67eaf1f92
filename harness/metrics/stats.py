"""Statistics with an explicit seeded generator: every estimate comes with its n and a CI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "Estimate",
    "PairedTest",
    "bootstrap_mean",
    "holm",
    "paired_difference",
    "signflip_pvalue",
    "split_halves",
    "trend_test",
]


@dataclass(frozen=True)
class Estimate:
    """A mean with a percentile-bootstrap confidence interval over ``n`` items."""

    value: float
    ci_low: float
    ci_high: float
    n: int


def bootstrap_mean(
    values: Sequence[float],
    rng: np.random.Generator,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> Estimate:
    """Mean of ``values`` with a percentile bootstrap CI; NaNs when there are no values."""
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    idx = rng.integers(0, n, size=(n_resamples, n))
    means = data[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Estimate(float(data.mean()), float(low), float(high), n)


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of two conditions over the same prompts."""

    mean_difference: Estimate  # mean of (b − a) with a paired bootstrap CI
    p_value: float  # two-sided
    method: str


def paired_difference(
    a: Sequence[float], b: Sequence[float], rng: np.random.Generator, method: str = "wilcoxon"
) -> PairedTest:
    """Compare ``b`` to ``a`` (paired by position): the mean difference with a bootstrap CI over
    pairs, and a two-sided p-value.

    ``wilcoxon``: the Wilcoxon signed-rank test (ties split between signs, ``zsplit``; suited to
    ordinal judge scores); ``signflip``: an exact (n ≤ 16) or Monte-Carlo (10,000 draws)
    sign-flip permutation test of the mean difference (suited to continuous shifts). All-zero
    differences give p = 1.
    """
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    d = y - x
    est = bootstrap_mean(d, rng)
    if d.size == 0:
        return PairedTest(est, float("nan"), method)
    if np.allclose(d, 0):
        return PairedTest(est, 1.0, method)
    if method == "wilcoxon":
        p = float(stats.wilcoxon(d, zero_method="zsplit").pvalue)
    elif method == "signflip":
        p = signflip_pvalue(d, rng)
    else:
        raise ValueError(f"unknown paired test {method!r}; valid: wilcoxon, signflip")
    return PairedTest(est, p, method)


def signflip_pvalue(d: np.ndarray, rng: np.random.Generator, n_draws: int = 10_000) -> float:
    """Two-sided sign-flip permutation p-value of mean(d) = 0 (exact for n ≤ 16)."""
    d = np.asarray(d, dtype=float)
    n = d.size
    observed = abs(d.mean())
    if n <= 16:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        means = np.abs((signs * d).mean(axis=1))
        return float((means >= observed - 1e-12).mean())
    signs = rng.choice([-1.0, 1.0], size=(n_draws, n))
    means = np.abs((signs * d).mean(axis=1))
    return float((1 + (means >= observed - 1e-12).sum()) / (n_draws + 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given; NaNs stay NaN, uncounted)."""
    p = np.asarray(p_values, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    out = p.copy()
    m = valid.size
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return [float(v) for v in out]


def trend_test(matrix: np.ndarray) -> tuple[float, float]:
    """Page's L test for a monotone increasing trend across ordered conditions.

    ``matrix`` is ``[n_prompts, n_conditions]`` with the conditions in increasing order (e.g.
    clamp levels); each prompt is a block. Returns (L, one-sided p-value).
    """
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2 or data.shape[1] < 3:
        return float("nan"), float("nan")
    if np.allclose(data, data[:, :1]):
        return float("nan"), 1.0
    res = stats.page_trend_test(data, method="asymptotic" if data.shape[0] > 12 else "auto")
    return float(res.statistic), float(res.pvalue)


def split_halves(n: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """A seeded random split of ``range(n)`` into two halves (the first gets the extra one)."""
    order = rng.permutation(n)
    half = (n + 1) // 2
    return sorted(int(i) for i in order[:half]), sorted(int(i) for i in order[half:])
