"""How far two judges agree where both scored the same items on the same rubric.

A run holds judgements by more than one judge after ``harness rescore --judge ...`` (or a
rescore with another rubric version): the old ones stay in the store. For every pair of judges
(or rubric versions) with at least ``MIN_ITEMS`` items both scored, on one rubric name: the share
of exact agreement, Cohen's κ (unweighted), quadratic-weighted κ (larger disagreements on the
ordinal scale cost more), and Spearman's ρ, each with a 95% percentile-bootstrap CI over items.
A statistic that is undefined on a sample (one judge gives every item the same score) is NaN
there and dropped from the bootstrap; when it is undefined on the data itself it is NaN.

Honest about what it measures: given the items' texts, identical texts (the same prompt and
continuation, which a steered model repeats) count once, as one sampled unit; κ is also given on
the informative items alone (where either judge scores above 0: two judges both giving 0 to text
that plainly lacks the concept agree trivially); and a pair where one judge is built on the other
(:data:`harness.judge.base.BUILT_ON`: the semantic offline judge is the keyword judge's level or
higher) is marked, its agreement being consistency rather than independent agreement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats

from harness.analysis.stats import N_RESAMPLES_SCREEN, Estimate, percentile_interval
from harness.judge.base import built_on

__all__ = ["MIN_ITEMS", "Agreement", "cohen_kappa", "item_texts", "judge_agreement"]

MIN_ITEMS = 5


@dataclass(frozen=True)
class Agreement:
    """Two judges (``judge@rubric ident``) on one rubric name, over the items both scored."""

    rubric: str
    first: str
    second: str
    judges: tuple[str, str]  # the two judges' names (the same name twice: two rubric versions)
    exact: Estimate
    kappa: Estimate
    weighted_kappa: Estimate
    spearman: Estimate
    informative_kappa: Estimate  # κ where either judge scores above 0
    n_items: int  # items both scored, before identical texts were counted once
    related: str = ""  # "B builds on A": consistency, not independent agreement


def cohen_kappa(a: np.ndarray, b: np.ndarray, weights: str | None = None) -> float:
    """Cohen's κ of two integer ratings (``weights="quadratic"`` for the weighted κ); NaN when
    the chance agreement is total (both raters give one and the same score throughout)."""
    a, b = np.asarray(a, dtype=int), np.asarray(b, dtype=int)
    levels = np.union1d(a, b)
    k = len(levels)
    ia, ib = np.searchsorted(levels, a), np.searchsorted(levels, b)
    observed = np.zeros((k, k))
    np.add.at(observed, (ia, ib), 1.0)
    observed /= observed.sum()
    expected = np.outer(observed.sum(1), observed.sum(0))
    if weights == "quadratic":
        grid = levels[:, None] - levels[None, :]
        w = grid.astype(float) ** 2
    else:
        w = 1.0 - np.eye(k)
    chance = float((w * expected).sum())
    if chance == 0.0:
        return float("nan")
    return 1.0 - float((w * observed).sum()) / chance


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def _statistics(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {
        "exact": float(np.mean(a == b)),
        "kappa": cohen_kappa(a, b),
        "weighted_kappa": cohen_kappa(a, b, "quadratic"),
        "spearman": _spearman(a, b),
    }


def _final_scores(judgements: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """(judge, rubric ident) → item key → its score (a scored attempt; unscored items left out)."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for j in judgements:
        if j["score"] is not None:
            out.setdefault((j["judge"], j["rubric"]), {})[j["of"]] = int(j["score"])
    return out


def _bootstrap(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_resamples: int
) -> dict[str, Estimate]:
    point = _statistics(a, b)
    draws: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(n_resamples):
        idx = rng.integers(0, len(a), len(a))
        for name, v in _statistics(a[idx], b[idx]).items():
            draws[name].append(v)
    return {
        name: Estimate(v, *percentile_interval(np.asarray(draws[name])), len(a))
        for name, v in point.items()
    }


def _distinct(common: list[str], texts: Mapping[str, str] | None) -> list[str]:
    """One item per distinct text (the first by key); items without a text stay."""
    if texts is None:
        return common
    seen: set[str] = set()
    out = []
    for key in common:
        text = texts.get(key)
        if text is None or text not in seen:
            out.append(key)
            if text is not None:
                seen.add(text)
    return out


def judge_agreement(
    judgements: list[dict[str, Any]],
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES_SCREEN,
    texts: Mapping[str, str] | None = None,
) -> list[Agreement]:
    """Every pair of raters (judge × rubric version) of one rubric name with ≥ ``MIN_ITEMS``
    items in common, in a stable order (by rubric, then rater names). With ``texts`` (item key
    → its text, :func:`item_texts`), identical texts count once."""
    scores = _final_scores(judgements)
    out = []
    for (ja, ra), (jb, rb) in combinations(sorted(scores), 2):
        if ra.split("@")[0] != rb.split("@")[0]:
            continue
        every = sorted(set(scores[(ja, ra)]) & set(scores[(jb, rb)]))
        common = _distinct(every, texts)
        if len(common) < MIN_ITEMS:
            continue
        a = np.array([scores[(ja, ra)][k] for k in common])
        b = np.array([scores[(jb, rb)][k] for k in common])
        est = _bootstrap(a, b, rng, n_resamples)
        lively = (a > 0) | (b > 0)
        if lively.sum() >= MIN_ITEMS:
            informative = _bootstrap(a[lively], b[lively], rng, n_resamples)["kappa"]
        else:
            informative = Estimate(float("nan"), float("nan"), float("nan"), int(lively.sum()))
        related = ""
        if built_on(ja) == jb:
            related = f"{ja} builds on {jb}"
        elif built_on(jb) == ja:
            related = f"{jb} builds on {ja}"
        out.append(
            Agreement(
                rubric=ra.split("@")[0],
                first=f"{ja} ({ra})",
                second=f"{jb} ({rb})",
                judges=(ja, jb),
                exact=est["exact"],
                kappa=est["kappa"],
                weighted_kappa=est["weighted_kappa"],
                spearman=est["spearman"],
                informative_kappa=informative,
                n_items=len(every),
                related=related,
            )
        )
    return out


def item_texts(store: Any) -> dict[str, str]:
    """Each generation's text as a judge saw it (prompt and continuation), by item key: what
    identical items are recognised by."""
    return {g["key"]: f"{g['prompt']}\x00{g['continuation']}" for g in store.records("generation")}
