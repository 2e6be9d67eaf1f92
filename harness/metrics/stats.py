"""Statistics with an explicit seeded generator: every estimate comes with its n and a CI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Estimate", "bootstrap_mean"]


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
