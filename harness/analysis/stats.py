"""Statistics with an explicit seeded generator: every estimate comes with its n and a CI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "EXACT_SIGNFLIP_MAX_N",
    "N_RESAMPLES",
    "N_RESAMPLES_SCREEN",
    "Estimate",
    "PairedTest",
    "agreement",
    "bootstrap_mean",
    "choice_stability",
    "contrast_interval",
    "holm",
    "paired_difference",
    "percentile_interval",
    "resample_indices",
    "signflip_method",
    "signflip_pvalue",
    "split_halves",
    "topk_recall",
    "trend_test",
    "unpaired_difference",
]


N_RESAMPLES = 2000  # means, paired and unpaired differences, SAE quality
N_RESAMPLES_SCREEN = 1000  # per-candidate screens: contrastive scores, attribution agreement
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean with a percentile-bootstrap confidence interval over ``n`` items."""

    value: float
    ci_low: float
    ci_high: float
    n: int


def resample_indices(
    n: int, rng: np.random.Generator, n_resamples: int = N_RESAMPLES
) -> np.ndarray:
    """``[n_resamples, n]`` indices drawn with replacement (the same rows resample paired data)."""
    return rng.integers(0, n, size=(n_resamples, n))


def percentile_interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of bootstrap draws (non-finite draws dropped; NaNs when none)."""
    alpha = (1.0 - confidence) / 2.0
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_mean(
    values: Sequence[float],
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
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


EXACT_SIGNFLIP_MAX_N = 20  # exact enumeration of all 2^n sign patterns up to here


def signflip_pvalue(d: np.ndarray, rng: np.random.Generator, n_draws: int = 10_000) -> float:
    """Two-sided sign-flip permutation p-value of mean(d) = 0: exact (all 2^n sign patterns,
    enumerated in chunks) for n ≤ :data:`EXACT_SIGNFLIP_MAX_N`, else Monte Carlo with
    ``n_draws`` draws (floor 1 / (n_draws + 1))."""
    d = np.asarray(d, dtype=float)
    n = d.size
    observed = abs(d.mean())
    if n <= EXACT_SIGNFLIP_MAX_N:
        hits, chunk = 0, 1 << min(n, 16)
        bits = np.arange(n)
        for start in range(0, 1 << n, chunk):
            codes = np.arange(start, min(start + chunk, 1 << n))
            signs = 1 - 2 * ((codes[:, None] >> bits) & 1)
            hits += int((np.abs(signs @ d) / n >= observed - 1e-12).sum())
        return hits / float(1 << n)
    signs = rng.choice([-1.0, 1.0], size=(n_draws, n))
    means = np.abs((signs * d).mean(axis=1))
    return float((1 + (means >= observed - 1e-12).sum()) / (n_draws + 1))


def signflip_method(n: int) -> str:
    """How :func:`signflip_pvalue` computes a p-value for ``n`` pairs, for reports."""
    if n <= EXACT_SIGNFLIP_MAX_N:
        return f"exact sign-flip test (all 2^{n} sign patterns)"
    return "Monte Carlo sign-flip test (10,000 draws)"


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


def unpaired_difference(
    a: Sequence[float], b: Sequence[float], rng: np.random.Generator, n_resamples: int = N_RESAMPLES
) -> Estimate:
    """mean(b) − mean(a) with an independent percentile bootstrap (a and b resampled apart);
    n is the smaller sample."""
    if len(a) == 0 or len(b) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    draws = y[rng.integers(0, y.size, (n_resamples, y.size))].mean(1) - x[
        rng.integers(0, x.size, (n_resamples, x.size))
    ].mean(1)
    low, high = np.quantile(draws, [0.025, 0.975])
    return Estimate(float(y.mean() - x.mean()), float(low), float(high), min(x.size, y.size))


def contrast_interval(
    positive: Sequence[float],
    negative: Sequence[float],
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES_SCREEN,
) -> tuple[float, float]:
    """95% bootstrap interval of mean(positive) − mean(negative), the two prompt sets resampled
    apart (one positive and one negative draw per resample, in that order)."""
    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    diffs = []
    for _ in range(n_resamples):
        p = pos[rng.integers(0, len(pos), len(pos))].mean()
        n = neg[rng.integers(0, len(neg), len(neg))].mean()
        diffs.append(p - n)
    low, high = np.quantile(diffs, [0.025, 0.975])
    return float(low), float(high)


def agreement(
    attribution: np.ndarray,
    ablation: np.ndarray,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES_SCREEN,
) -> dict[str, Estimate]:
    """How well per-prompt attribution predicts per-prompt ablation effects (both ``[prompts,
    features]``): Spearman and Pearson of the feature means, sign agreement, top-5 overlap, each
    with a bootstrap CI over prompts."""

    def point(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        ma, mb = a.mean(0), b.mean(0)
        top_a = set(np.argsort(-np.abs(ma))[:5])
        top_b = set(np.argsort(-np.abs(mb))[:5])
        return {
            "spearman": float(stats.spearmanr(ma, mb).statistic),
            "pearson": float(stats.pearsonr(ma, mb).statistic),
            "sign_agreement": float(np.mean(np.sign(ma) == np.sign(mb))),
            "precision_at_5": len(top_a & top_b) / 5,
        }

    attribution = np.asarray(attribution, dtype=float)
    ablation = np.asarray(ablation, dtype=float)
    estimate = point(attribution, ablation)
    n = attribution.shape[0]
    samples: dict[str, list[float]] = {k: [] for k in estimate}
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        for k, v in point(attribution[idx], ablation[idx]).items():
            samples[k].append(v)
    return {
        k: Estimate(
            v,
            float(np.nanquantile(samples[k], 0.025)),
            float(np.nanquantile(samples[k], 0.975)),
            n,
        )
        for k, v in estimate.items()
    }


def choice_stability(
    positive: np.ndarray,
    negative: np.ndarray,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES_SCREEN,
) -> tuple[Estimate, float]:
    """How firmly a contrastive search's first candidate is first: the margin between the
    first and second candidates' scores (mean on positive prompts minus mean on negative
    prompts), with a bootstrap CI, and the share of resamples in which the first stays first.

    ``positive`` / ``negative`` are ``[candidates, prompts]`` in rank order; each resample draws
    the positive and the negative prompts apart, the same draw for every candidate.
    """
    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    scores = pos.mean(1) - neg.mean(1)
    margins, first = [], 0
    for _ in range(n_resamples):
        p = pos[:, rng.integers(0, pos.shape[1], pos.shape[1])].mean(1)
        q = neg[:, rng.integers(0, neg.shape[1], neg.shape[1])].mean(1)
        s = p - q
        margins.append(s[0] - s[1])
        first += int(np.argmax(s) == 0)
    low, high = percentile_interval(np.asarray(margins))
    n = pos.shape[1] + neg.shape[1]
    return Estimate(float(scores[0] - scores[1]), low, high, n), first / n_resamples


def topk_recall(
    attribution: np.ndarray,
    ablation: np.ndarray,
    k: int,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES_SCREEN,
) -> Estimate:
    """Recall of the true top-``k`` features (largest |mean ablation effect|) by attribution's
    top-``k`` (largest |mean attribution|), both ``[prompts, features]`` over one set of
    features chosen independently of attribution; a bootstrap CI over prompts."""
    a, b = np.asarray(attribution, dtype=float), np.asarray(ablation, dtype=float)
    k = min(k, a.shape[1])

    def recall(x: np.ndarray, y: np.ndarray) -> float:
        top_x = set(np.argsort(-np.abs(x.mean(0)), kind="stable")[:k].tolist())
        top_y = set(np.argsort(-np.abs(y.mean(0)), kind="stable")[:k].tolist())
        return len(top_x & top_y) / k

    n = a.shape[0]
    draws = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        draws.append(recall(a[idx], b[idx]))
    low, high = percentile_interval(np.asarray(draws))
    return Estimate(recall(a, b), low, high, n)
