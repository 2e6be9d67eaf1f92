"""Summary rows: each aggregate is (sae, study, condition, metric, value, ci_low, ci_high, n)."""

from __future__ import annotations

from typing import Any

from harness.analysis.stats import Estimate

__all__ = ["SUMMARY_COLUMNS", "estimate_row", "p_row", "summary_row"]

SUMMARY_COLUMNS = ("sae", "study", "condition", "metric", "value", "ci_low", "ci_high", "n")
Group = tuple[str, str, str]


def summary_row(
    group: Group, metric: str, value: float, low: float, high: float, n: int
) -> dict[str, Any]:
    """One summary row: (sae, study, condition), the metric, its value, CI bounds and n."""
    return dict(zip(SUMMARY_COLUMNS, (*group, metric, value, low, high, n), strict=True))


def estimate_row(group: Group, metric: str, est: Estimate) -> dict[str, Any]:
    """A summary row of an estimate with its CI and n."""
    return summary_row(group, metric, est.value, est.ci_low, est.ci_high, est.n)


def p_row(group: Group, metric: str, p: float, n: int) -> dict[str, Any]:
    """A summary row of a p-value or statistic: no CI (NaN bounds), with its n."""
    return summary_row(group, metric, p, float("nan"), float("nan"), n)
