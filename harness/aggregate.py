"""Summary rows from the run store's records: every number with its CI and n (DESIGN §7)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from harness.metrics.stats import bootstrap_mean
from harness.store import RunStore

__all__ = ["SUMMARY_COLUMNS", "summarise"]

SUMMARY_COLUMNS = ("sae", "study", "condition", "metric", "value", "ci_low", "ci_high", "n")


def summarise(store: RunStore, seed: int) -> list[dict[str, Any]]:
    """Aggregate judgements per (sae, study, condition).

    Metrics: ``concept_score`` (mean judged score, scored items only), ``mention_rate`` (share of
    scored items with score ≥ 1), ``n_unscored`` (failed judgements: never counted as a score).
    Conditions keep the order in which they were generated (baseline first, then levels).
    """
    rng = np.random.default_rng(seed)
    order: dict[tuple[str, str, str], int] = {}
    for g in store.records("generation"):
        order.setdefault((g["sae"], g["study"], g["condition"]), len(order))
    scores: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    unscored: dict[tuple[str, str, str], int] = defaultdict(int)
    for j in store.judgements():
        group = (j["sae"], j["study"], j["condition"])
        if j["score"] is None:
            unscored[group] += 1
        else:
            scores[group].append(j["score"])
    rows: list[dict[str, Any]] = []
    for group in sorted(order, key=order.__getitem__):
        sae, study, condition = group
        vals = scores.get(group, [])
        for metric, data in (
            ("concept_score", vals),
            ("mention_rate", [1.0 if v >= 1 else 0.0 for v in vals]),
        ):
            est = bootstrap_mean(data, rng)
            rows.append(
                dict(
                    zip(
                        SUMMARY_COLUMNS,
                        (sae, study, condition, metric, est.value, est.ci_low, est.ci_high, est.n),
                        strict=True,
                    )
                )
            )
        n_un = unscored.get(group, 0)
        rows.append(
            dict(
                zip(
                    SUMMARY_COLUMNS,
                    (
                        sae,
                        study,
                        condition,
                        "n_unscored",
                        float(n_un),
                        float(n_un),
                        float(n_un),
                        len(vals) + n_un,
                    ),
                    strict=True,
                )
            )
        )
    return rows
