"""Summary rows from the run store's records: every number with its CI and n (DESIGN §7)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from harness.analysis.effects import measure_rows, next_token_rows, scores_by_rubric
from harness.analysis.quality import quality_rows
from harness.analysis.rows import SUMMARY_COLUMNS, summary_row
from harness.analysis.stats import bootstrap_mean
from harness.judge.rubric import rubric_metric
from harness.spec.refs import sae_label
from harness.store import RunStore
from harness.studies.contract import RowContext
from harness.studies.registry import kind_of

__all__ = ["SUMMARY_COLUMNS", "judge_totals", "summarise", "summary_row"]


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
    for j in store.judgements("*"):
        totals["judgements"] += 1
        if j["score"] is None:
            totals["unscored"] += 1
            reasons[j["unscored_reason"]] = reasons.get(j["unscored_reason"], 0) + 1
        else:
            totals["scored"] += 1
        totals["cached"] += int(j.get("cached", False))
    totals["attempts"] = 0
    for j in store.judgements("*", every_attempt=True):  # every attempt was paid for
        totals["attempts"] += 1
        for k in ("api_calls", "input_tokens", "output_tokens", "cost_usd"):
            totals[k] += j.get(k, 0)
    return totals


def _scale_high(ident: str, texts: dict[str, str]) -> int:
    """The top of a rubric's scale, from the text the run was judged with (stored in its
    provenance); runs stored before that fall back to today's rubric of the same name."""
    from harness.judge.rubric import load_rubric, parse_rubric

    if ident in texts:
        return parse_rubric(texts[ident], ident).high
    return load_rubric(ident.split("@", 1)[0]).high


def _in_key_order(by_key: dict[str, int]) -> list[int]:
    """Values in key order: the bootstrap then does not depend on the order records landed in
    (a resumed or rescored run gives the same CIs)."""
    return [by_key[k] for k in sorted(by_key)]


def summarise(store: RunStore, seed: int) -> list[dict[str, Any]]:
    """Aggregate judgements per (sae, study, condition), with bootstrap CIs over prompts.

    Metrics: ``concept_score`` (the primary rubric's mean, scored items only), ``mention_rate``
    (share of scored items with concept score ≥ 1), ``n_unscored`` (primary-rubric judgements that
    failed: never counted as a score), one ``<rubric>_score`` per extra rubric, and
    ``steering_score``: per item, the harmonic mean of concept, instruction and fluency scores,
    each divided by its scale's maximum (the aggregate steering benchmarks such as AxBench use),
    over items scored on all three. Groups come in the plan's order (SAE, study, condition), so
    rows and CIs do not depend on the order records landed in (executors, resumes).
    """
    rng = np.random.default_rng(seed)
    prov = store.read_json("provenance.json")
    primary = prov["rubric"]
    rubrics: dict[str, str] = prov.get("rubrics") or {primary.split("@", 1)[0]: primary}
    order: dict[tuple[str, str, str], int] = {}
    exp = store.experiment()
    for ref in exp.saes:  # the plan's order, whatever order the records landed in
        for study in exp.studies:
            for it in kind_of(study).items(exp, sae_label(ref), study):
                order.setdefault((it.sae, it.study, it.condition), len(order))
    for g in store.records("generation"):  # records of a study the spec no longer plans
        order.setdefault((g["sae"], g["study"], g["condition"]), len(order))
    # scores[rubric ident][group] = {generation key: score}
    scores: dict[str, dict[tuple[str, str, str], dict[str, int]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    unscored: dict[tuple[str, str, str], int] = defaultdict(int)
    for j in store.judgements("*"):
        group = (j["sae"], j["study"], j["condition"])
        if j["score"] is None:
            unscored[group] += j["rubric"] == primary
        else:
            scores[j["rubric"]][group][j["of"]] = j["score"]
    texts = prov.get("rubric_texts") or {}
    highs = {ident: _scale_high(ident, texts) for ident in rubrics.values()}
    hm_parts = [rubrics.get(n) for n in ("concept_presence", "instruction", "fluency")]
    rows: list[dict[str, Any]] = []

    def add(group: tuple[str, str, str], metric: str, data: list[float]) -> None:
        est = bootstrap_mean(data, rng)
        rows.append(summary_row(group, metric, est.value, est.ci_low, est.ci_high, est.n))

    for group in sorted(order, key=order.__getitem__):
        primary_scores = _in_key_order(scores[primary][group])
        add(
            group,
            rubric_metric(primary.split("@", 1)[0], primary=True),
            [float(v) for v in primary_scores],
        )
        add(group, "mention_rate", [1.0 if v >= 1 else 0.0 for v in primary_scores])
        n_un = unscored.get(group, 0)
        rows.append(
            summary_row(
                group,
                "n_unscored",
                float(n_un),
                float(n_un),
                float(n_un),
                len(primary_scores) + n_un,
            )
        )
        for name, ident in rubrics.items():
            if ident != primary:
                add(
                    group,
                    rubric_metric(name, primary=False),
                    [float(v) for v in _in_key_order(scores[ident][group])],
                )
        if all(hm_parts):
            per_item = [scores[ident][group] for ident in hm_parts if ident]
            common = set.intersection(*(set(d) for d in per_item))
            hm = []
            for key in sorted(common):
                parts = [
                    d[key] / highs[ident]
                    for d, ident in zip(per_item, hm_parts, strict=True)
                    if ident
                ]
                hm.append(0.0 if min(parts) == 0 else len(parts) / sum(1 / p for p in parts))
            add(group, "steering_score", hm)
    return quality_rows(store, seed) + rows + _study_rows(store, seed)


def _study_rows(store: RunStore, seed: int) -> list[dict[str, Any]]:
    """Measures and next-token effects of every stored record, then each study's own rows
    (its kind's ``rows``), in spec order; one seeded stream for the intervention statistics."""
    rng = np.random.default_rng(seed + 1)
    rows = measure_rows(store, rng) + next_token_rows(store, rng)
    scores = scores_by_rubric(store)
    rc = RowContext(store, seed, rng, str(scores["primary"]), scores)
    for study in store.experiment().studies:
        rows += kind_of(study).rows(rc, study)
    return rows
