"""Summary rows from the run store's records: every number with its CI and n (DESIGN §7)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from harness.metrics.stats import bootstrap_mean
from harness.store import RunStore

__all__ = ["SUMMARY_COLUMNS", "judge_totals", "summarise"]

SUMMARY_COLUMNS = ("sae", "study", "condition", "metric", "value", "ci_low", "ci_high", "n")


def judge_totals(store: RunStore) -> dict[str, Any]:
    """What the active judge did: counts, unscored reasons, API calls, tokens, cost."""
    totals: dict[str, Any] = {
        "judgements": 0,
        "scored": 0,
        "unscored": 0,
        "cached": 0,
        "api_calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "unscored_reasons": {},
    }
    reasons: dict[str, int] = totals["unscored_reasons"]
    for j in store.judgements():
        totals["judgements"] += 1
        if j["score"] is None:
            totals["unscored"] += 1
            reasons[j["unscored_reason"]] = reasons.get(j["unscored_reason"], 0) + 1
        else:
            totals["scored"] += 1
        totals["cached"] += int(j.get("cached", False))
        for k in ("api_calls", "input_tokens", "output_tokens", "cost_usd"):
            totals[k] += j.get(k, 0)
    return totals


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
