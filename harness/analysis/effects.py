"""Summary rows the intervention kinds share: measures and next-token effects of every stored
record, paired tests, trend and the recommended level. Definitions: docs/metrics.md.

The helpers take plain data; which kind uses which is decided in the kind's module.

Every estimate is a mean over prompts with a seeded percentile-bootstrap 95% CI and its n;
p-values carry their n and NaN CI bounds.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from harness.analysis.rows import estimate_row as _est_row
from harness.analysis.rows import p_row as _p_row
from harness.analysis.rows import summary_row
from harness.analysis.stats import (
    bootstrap_mean,
    holm,
    paired_difference,
    split_halves,
    trend_test,
)
from harness.studies.contract import RunStore
from harness.studies.items import BASELINE, split_condition

__all__ = [
    "measure_rows",
    "next_token_rows",
    "paired_rows",
    "recommended_rows",
    "scores_by_rubric",
    "trend_rows",
]

Group = tuple[str, str, str]
NAN = float("nan")


def scores_by_rubric(store: RunStore) -> dict[str, Any]:
    """rubric name → (sae, study, condition) → prompt index → score (scored judgements only);
    under ``"primary"``: the primary rubric's name."""
    prov = store.read_json("provenance.json")
    by_ident = {ident: name for name, ident in (prov.get("rubrics") or {}).items()}
    by_ident.setdefault(prov["rubric"], prov["rubric"].split("@", 1)[0])
    out: dict[str, Any] = defaultdict(lambda: defaultdict(dict))
    out["primary"] = prov["rubric"].split("@", 1)[0]
    for j in store.judgements("*"):
        name = by_ident.get(j["rubric"])
        if name is not None and j["score"] is not None:
            out[name][(j["sae"], j["study"], j["condition"])][j["prompt_index"]] = j["score"]
    return out


def measure_rows(store: RunStore, rng: np.random.Generator) -> list[dict[str, Any]]:
    data: dict[Group, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    records = sorted(store.records("measure"), key=lambda m: (m["prompt_index"], m["key"]))
    for m in records:
        group = (m["sae"], m["study"], m["condition"])
        is_base = split_condition(m["condition"])[1] == BASELINE
        for name in ("nll", "drift", "concept_gain"):
            value = m.get(name)
            if value is None or (is_base and name != "nll") or not np.isfinite(value):
                continue
            data[group][name].append(float(value))
    rows = []
    for group, metrics in sorted(data.items()):  # fixed order: CIs independent of record order
        for name in ("drift", "concept_gain", "nll"):
            if metrics.get(name):
                est = bootstrap_mean(metrics[name], rng)
                rows.append(_est_row(group, name, est))
                if name == "nll":  # perplexity: exp of the mean NLL (a geometric mean)
                    rows.append(
                        summary_row(
                            group,
                            "perplexity",
                            float(np.exp(est.value)),
                            float(np.exp(est.ci_low)),
                            float(np.exp(est.ci_high)),
                            est.n,
                        )
                    )
    return rows


def next_token_rows(store: RunStore, rng: np.random.Generator) -> list[dict[str, Any]]:
    data: dict[Group, list[dict[str, Any]]] = defaultdict(list)
    for r in store.records("next_token"):
        data[(r["sae"], r["study"], r["condition"])].append(r)
    rows = []
    for group, recs in sorted(data.items(), key=lambda kv: kv[0]):
        recs.sort(key=lambda r: r["prompt_index"])
        for name, values in (
            ("top1_changed", [float(r["changed"]) for r in recs]),
            ("p_shift", [r["p_shift"] for r in recs]),
            ("kl_last", [r["kl_last"] for r in recs]),
            ("kl_mean", [r["kl_mean"] for r in recs]),
        ):
            rows.append(_est_row(group, name, bootstrap_mean(values, rng)))
        for word in recs[0]["logit_shift"]:
            shifts = [r["logit_shift"][word] for r in recs]
            rows.append(_est_row(group, f"logit_shift[{word}]", bootstrap_mean(shifts, rng)))
        if "metric_base" in recs[0]:
            base = [r["metric_base"] for r in recs]
            iv = [r["metric_iv"] for r in recs]
            test = paired_difference(base, iv, rng, method="signflip")
            rows.append(_est_row(group, "metric_baseline", bootstrap_mean(base, rng)))
            rows.append(_est_row(group, "metric_intervened", bootstrap_mean(iv, rng)))
            rows.append(_est_row(group, "metric_shift", test.mean_difference))
            rows.append(_p_row(group, "metric_shift_p", test.p_value, test.mean_difference.n))
    return rows


def paired_rows(
    sae: str,
    study: str,
    conditions: list[str],
    concept: dict[Group, dict[int, int]],
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Each condition vs the baseline on the same prompts: judged concept difference (Wilcoxon
    signed-rank), Holm-corrected over the study's conditions."""
    base = concept.get((sae, study, BASELINE), {})
    tests = []
    for cond in conditions:
        scores = concept.get((sae, study, cond), {})
        common = sorted(set(base) & set(scores))
        tests.append(
            (
                cond,
                paired_difference(
                    [base[i] for i in common], [scores[i] for i in common], rng, "wilcoxon"
                ),
            )
        )
    adjusted = holm([t.p_value for _, t in tests])
    rows = []
    for (cond, test), p_holm in zip(tests, adjusted, strict=True):
        group = (sae, study, cond)
        n = test.mean_difference.n
        rows += [
            _est_row(group, "concept_diff", test.mean_difference),
            _p_row(group, "concept_p", test.p_value, n),
            _p_row(group, "concept_p_holm", p_holm, n),
        ]
    return rows


def trend_rows(
    sae: str, study: str, conditions: list[str], concept: dict[Group, dict[int, int]]
) -> list[dict[str, Any]]:
    """Page's L trend test of the concept score across increasing levels (prompts = blocks)."""
    per = [concept.get((sae, study, c), {}) for c in conditions]
    common = sorted(set.intersection(*(set(p) for p in per))) if per else []
    matrix = np.array([[p[i] for p in per] for i in common], dtype=float)
    stat, p = trend_test(matrix) if len(common) else (NAN, NAN)
    group = (sae, study, "trend")
    return [_p_row(group, "page_L", stat, len(common)), _p_row(group, "trend_p", p, len(common))]


def recommended_rows(
    sae: str,
    study: str,
    levels: tuple[float, ...],
    fluency_threshold: float,
    conditions: list[str],
    concept: dict[Group, dict[int, int]],
    fluency: dict[Group, dict[int, int]],
    seed: int,
) -> list[dict[str, Any]]:
    """The best concept score among the levels that steer (mean concept above the baseline's on
    the same prompts) and keep judged fluency ≥ the threshold,
    chosen on one half of the prompts (seeded split) and reported, with CIs, on the other half.
    When no level qualifies the ``level`` row is NaN: the report says no level met the
    criterion instead of recommending one that does not steer (e.g. 0 × max)."""
    if not fluency:
        return []
    prompts = sorted({i for c in conditions for i in concept.get((sae, study, c), {})})
    if len(prompts) < 2:
        return []
    rng = np.random.default_rng(seed)
    pick, held = split_halves(len(prompts), rng)
    choose = {prompts[i] for i in pick}
    report = {prompts[i] for i in held}

    def mean(table: dict[Group, dict[int, int]], cond: str, which: set[int]) -> float:
        vals = [v for i, v in table.get((sae, study, cond), {}).items() if i in which]
        return float(np.mean(vals)) if vals else NAN

    base = concept.get((sae, study, BASELINE), {})

    def steers(cond: str) -> bool:
        got = concept.get((sae, study, cond), {})
        pairs = [got[i] - base[i] for i in sorted(choose) if i in got and i in base]
        return bool(pairs) and float(np.mean(pairs)) > 0

    best: tuple[float, float, str] | None = None
    for level, cond in zip(levels, conditions, strict=True):
        c, f = mean(concept, cond, choose), mean(fluency, cond, choose)
        if np.isnan(c) or np.isnan(f) or f < fluency_threshold or not steers(cond):
            continue
        if best is None or c > best[0] or (c == best[0] and level < best[1]):
            best = (c, level, cond)
    group = (sae, study, "recommended")
    if best is None:
        return [summary_row(group, "level", NAN, NAN, NAN, len(choose))]
    _, level, cond = best

    def held_out(table: dict[Group, dict[int, int]]) -> list[float]:
        got = table.get((sae, study, cond), {})
        return [float(got[i]) for i in sorted(got) if i in report]

    return [
        summary_row(group, "level", level, NAN, NAN, len(choose)),
        _est_row(group, "concept_score_heldout", bootstrap_mean(held_out(concept), rng)),
        _est_row(group, "fluency_score_heldout", bootstrap_mean(held_out(fluency), rng)),
    ]
