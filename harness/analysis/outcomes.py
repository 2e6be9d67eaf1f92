"""Per-prompt outcomes of a steering condition: what the average hides.

For every level of a sweep, each target prompt's concept score is compared with the same
prompt's unclamped score: it moved toward the concept (higher), did not move, or moved away
(lower). The three shares come with Wilson score 95% intervals (valid at 0 and 1, where a
bootstrap of a share collapses to a point), so "none of 16 moved away" reads as [0%, 19%], not
as a certainty. And the paired effect's size says how many prompts a study of it needs: the
n for 80% power of a two-sided paired test at α = 0.05 (the normal approximation with the
t-correction, n = ((z₁₋α/₂ + z₁₋β) / d)² + z₁₋α/₂² / 2, d = mean difference / its SD).
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

from harness.studies.items import BASELINE

__all__ = [
    "POWER",
    "WRONG_WAY_LIMIT",
    "n_for_power",
    "outcome_rows",
    "wilson_interval",
]

WRONG_WAY_LIMIT = 0.2  # warn when the away share's upper 95% bound is above this
POWER = 0.8
ALPHA = 0.05

Group = tuple[str, str, str]


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials."""
    if n == 0:
        return float("nan"), float("nan")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def n_for_power(differences: list[float], power: float = POWER, alpha: float = ALPHA) -> float:
    """Prompts a paired two-sided test needs to detect the observed mean difference with
    ``power``; inf when there is no effect, NaN when it cannot be told (fewer than 2 prompts,
    or no spread: every prompt moved by the same amount, which any n detects)."""
    n = len(differences)
    if n < 2:
        return float("nan")
    mean = sum(differences) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    if sd == 0:
        return float("nan") if mean else float("inf")
    if mean == 0:
        return float("inf")
    d = abs(mean) / sd
    za, zb = float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(power))
    return float(math.ceil(((za + zb) / d) ** 2 + za * za / 2))


def _row(
    group: Group, metric: str, value: float, low: float, high: float, n: int
) -> dict[str, Any]:
    sae, study, condition = group
    return {
        "sae": sae,
        "study": study,
        "condition": condition,
        "metric": metric,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "n": n,
    }


def outcome_rows(
    sae: str, study: str, conditions: list[str], concept: dict[Group, dict[int, int]]
) -> list[dict[str, Any]]:
    """``toward_share``, ``unmoved_share``, ``away_share`` (Wilson CIs) and
    ``n_for_80pct_power`` (no CI) of each condition against the unclamped baseline, per prompt."""
    base = concept.get((sae, study, BASELINE), {})
    rows = []
    for cond in conditions:
        if cond == BASELINE:
            continue
        scores = concept.get((sae, study, cond), {})
        common = sorted(set(base) & set(scores))
        if not common:
            continue
        diffs = [float(scores[i] - base[i]) for i in common]
        n = len(diffs)
        group = (sae, study, cond)
        for metric, k in (
            ("toward_share", sum(d > 0 for d in diffs)),
            ("unmoved_share", sum(d == 0 for d in diffs)),
            ("away_share", sum(d < 0 for d in diffs)),
        ):
            rows.append(_row(group, metric, k / n, *wilson_interval(k, n), n))
        nan = float("nan")
        rows.append(_row(group, "n_for_80pct_power", n_for_power(diffs), nan, nan, n))
    return rows
