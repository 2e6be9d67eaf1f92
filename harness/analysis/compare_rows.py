"""Comparison rows: one metric of one study and condition for every checkpoint, with each
checkpoint's difference from the reference. The study kinds build theirs from these helpers
(``StudyKind.compare_rows``); :mod:`harness.analysis.compare` puts them together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.analysis.stats import Estimate, bootstrap_mean, unpaired_difference
from harness.judge.rubric import metric_rubric
from harness.store.judged import study_reading
from harness.studies.controls import parse_control
from harness.studies.items import BASELINE, ItemKey

__all__ = [
    "JUDGED",
    "MIN_N",
    "NAN_ESTIMATE",
    "ComparisonRow",
    "excludes_zero",
    "item_rows",
    "judged_context_rows",
    "keyword_judged",
    "stored_rows",
    "unvalidated_note",
    "verdict",
]

NAN_ESTIMATE = Estimate(float("nan"), float("nan"), float("nan"), 0)
_NAN = NAN_ESTIMATE


@dataclass(frozen=True)
class ComparisonRow:
    """One metric of one study and condition, for every checkpoint."""

    study: str
    condition: str
    metric: str
    values: list[Estimate]  # per checkpoint
    differences: list[Estimate]  # per non-reference checkpoint: it − reference
    pairing: str  # "sequences", "prompts", "unpaired" or "none"
    higher_is_better: bool | None = None
    offline_judged: bool = False  # a concept score from the keyword-only offline judge alone
    unvalidated: str = ""  # "judge not validated (κ = …)": its judge fails the human labels


MIN_N = 8  # fewer items than this: a difference is reported, never called better or worse
JUDGED = ("concept_score", "fluency_score", "instruction_score", "specificity_score")


def verdict(row: ComparisonRow, d: Estimate, digits: int = 3) -> str:
    """What a difference says: "" (its CI, shown at ``digits`` decimals, touches or includes
    0), ``better``/``worse`` (``higher``/``lower`` when neither direction is better, and for a
    control condition: a control's own score moving is no improvement of the feature), or
    ``inconclusive (…)`` when the CI excludes 0 but rests on fewer than ``MIN_N`` items or on the
    keyword-only offline judge alone."""
    if not excludes_zero(d, digits):
        return ""
    if d.n < MIN_N:
        return f"inconclusive (n={d.n} < {MIN_N})"
    if row.offline_judged:
        return "inconclusive (offline keyword judge only)"
    if row.unvalidated:
        return row.unvalidated
    up = d.ci_low > 0
    if row.higher_is_better is None or parse_control(row.condition) is not None:
        return "higher" if up else "lower"
    return "better" if up == row.higher_is_better else "worse"


def keyword_judged(run: Any) -> bool:
    """Whether a run's judged scores come from the keyword-only offline judge (a count of the
    spec's words; the semantic offline judge and the API judge read meaning)."""
    return str(run.provenance.get("judge", "")).startswith("offline-keyword")


def _offline(checkpoint: Any) -> bool:
    return keyword_judged(checkpoint.run)


def excludes_zero(d: Estimate, digits: int | None = None, eps: float = 1e-9) -> bool:
    """Whether a difference's CI lies clear of 0 (float noise below ``eps`` is 0); with
    ``digits``, clear of 0 as shown at that many decimals (``[-0.005, 0.000]`` touches it)."""
    if d.n <= 0 or math.isnan(d.ci_low):
        return False
    if digits is not None:
        return round(d.ci_low, digits) > 0 or round(d.ci_high, digits) < 0
    return d.ci_low > eps or d.ci_high < -eps


_SUMMARY_INDEX: dict[int, tuple[Any, dict[tuple[str, str, str, str], Estimate]]] = {}


def _summary_index(run: Any) -> dict[tuple[str, str, str, str], Estimate]:
    """A run's stored summary rows by (SAE, study, metric, condition)."""
    hit = _SUMMARY_INDEX.get(id(run))
    if hit is not None and hit[0] is run:
        return hit[1]
    index = {
        (str(r["sae"]), str(r["study"]), str(r["metric"]), str(r["condition"])): Estimate(
            float(r["value"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n"])
        )
        for r in run.summary.to_dict("records")
    }
    _SUMMARY_INDEX.clear()  # one run at a time is enough: rows are built run by run
    _SUMMARY_INDEX[id(run)] = (run, index)
    return index


def stored_estimate(
    c: Any, study: str, metric: str, cond: str, values: list[float], rng: np.random.Generator
) -> Estimate:
    """The checkpoint's own estimate of a quantity: the interval its run stored (what the
    report and MLflow show) when that row holds these same items, else a fresh bootstrap."""
    row = _summary_index(c.run).get((c.sae, study, metric, cond))
    if row is not None and row.n == len(values) and values:
        if math.isclose(row.value, float(np.mean(values)), rel_tol=1e-9, abs_tol=1e-12):
            return row
    return bootstrap_mean(values, rng)


_VALIDITY: dict[tuple[int, str, str], tuple[Any, str]] = {}


def natural_offline(run: Any, judge: str) -> bool:
    """Whether a run's concept scores are an offline judge's of a real model's text (natural
    text, where its toy-world calibration does not carry over: ``judge/natural_eval.py``)."""
    from harness.judge.base import OFFLINE_JUDGES

    return judge in OFFLINE_JUDGES and getattr(run.experiment.model, "kind", "toy") != "toy"


def unvalidated_note(runs: Sequence[Any], study: str, metric: str) -> str:
    """ "judge not validated (κ = …)" when a judged metric of ``study`` rests, in any of the
    (loaded) runs, on a judge whose κ with an annotator is below the spec's threshold, or
    (without labels) on an offline judge's concept scores of a real model's text
    (``analysis/judge_validity.py``); "" otherwise, and without human labels."""
    from harness.analysis.judge_validity import is_human, judgement_rows, run_texts, validity
    from harness.judge.base import natural_text_note

    if metric not in JUDGED:
        return ""
    for run in runs:
        prov = run.provenance
        judge, primary = study_reading(prov, study)
        rubric = metric_rubric(metric, primary.split("@", 1)[0])
        cache = (id(run), judge, rubric)
        hit = _VALIDITY.get(cache)
        if hit is None or hit[0] is not run:
            rows = judgement_rows(run)
            note = ""
            if any(is_human(str(j["judge"])) for j in rows):
                threshold = run.experiment.judge.min_kappa_vs_humans
                v = validity(rows, judge, rubric, threshold, run_texts(run))
                note = v.note() if v is not None and not v.validated else ""
            elif metric == "concept_score" and natural_offline(run, judge):
                note = natural_text_note(judge)
            _VALIDITY[cache] = hit = (run, note)
        if hit[1]:
            return str(hit[1])
    return ""


def item_rows(
    checkpoints: Sequence[Any],
    study: str,
    metric: str,
    better: bool | None,
    rng: np.random.Generator,
) -> list[ComparisonRow]:
    """One row per condition of ``study`` (target prompts, baseline excluded)."""
    per: list[dict[tuple[str, int], float]] = []
    conditions: dict[str, None] = {}
    cache: dict[int, dict[ItemKey, float]] = {}
    for c in checkpoints:
        if id(c.run) not in cache:
            cache[id(c.run)] = c.run.item_values(metric)
        values = cache[id(c.run)]
        mine = {
            (k[2], k[4]): v
            for k, v in values.items()
            if k[0] == c.position and k[1] == study and k[3] == "target" and k[2] != BASELINE
        }
        per.append(mine)
        conditions.update(dict.fromkeys(cond for cond, _ in mine))  # generation order
    rows = []
    for cond in conditions:
        vals = [[v for (cd, _), v in sorted(p.items()) if cd == cond] for p in per]
        if not any(vals):
            continue
        ests = [
            stored_estimate(c, study, metric, cond, v, rng)
            for c, v in zip(checkpoints, vals, strict=True)
        ]
        diffs = []
        for p in per[1:]:
            common = sorted(k for k in per[0] if k[0] == cond and k in p)
            diffs.append(bootstrap_mean([p[k] - per[0][k] for k in common], rng))
        offline = metric == "concept_score" and any(_offline(c) for c in checkpoints)
        rows.append(
            ComparisonRow(
                study,
                cond,
                metric,
                ests,
                diffs,
                "prompts",
                better,
                offline,
                unvalidated_note([c.run for c in checkpoints], study, metric),
            )
        )
    return rows


def judged_context_rows(
    checkpoints: Sequence[Any],
    study: str,
    rubric: str,
    metric: str,
    rng: np.random.Generator,
) -> list[ComparisonRow]:
    """Scores of judged contexts on one of a kind's own rubrics (e.g. specificity), per
    condition: contexts are sampled per feature, so the differences are unpaired."""
    per: list[dict[str, list[float]]] = []
    for c in checkpoints:
        groups: dict[str, list[float]] = {}
        prov = c.run.provenance
        ident = (prov.get("study_rubrics") or {}).get(rubric) or prov.get(f"{rubric}_rubric")
        recs = c.run.records
        by = study_reading(prov, study)[0]
        if ident and "kind" in recs:
            js = recs[(recs["kind"] == "judgement") & (recs["rubric"] == ident)]
            for j in js.to_dict("records"):
                if j["sae"] == c.sae and j["study"] == study and j["judge"] == by:
                    if j["score"] is not None and j["score"] == j["score"]:
                        groups.setdefault(j["condition"], []).append(float(j["score"]))
        per.append(groups)
    conditions = dict.fromkeys(cond for g in per for cond in g)
    rows = []
    for cond in conditions:
        vals = [g.get(cond, []) for g in per]
        diffs = [unpaired_difference(vals[0], v, rng) for v in vals[1:]]
        ests = [bootstrap_mean(v, rng) for v in vals]
        rows.append(ComparisonRow(study, cond, metric, ests, diffs, "unpaired", True))
    return rows


def stored_rows(
    checkpoints: Sequence[Any], study: str, metrics: tuple[str, ...]
) -> list[ComparisonRow]:
    """Statistics that exist only as summary rows (own CIs, difference without a CI)."""
    rows = []
    for metric in metrics:
        ests: list[Estimate] = []
        condition = ""
        for c in checkpoints:
            s = c.run.summary
            hit = s[(s["sae"] == c.sae) & (s["study"] == study) & (s["metric"] == metric)]
            if len(hit):
                r = hit.iloc[0]
                condition = str(r["condition"])
                ests.append(Estimate(r["value"], r["ci_low"], r["ci_high"], int(r["n"])))
            else:
                ests.append(_NAN)
        if all(e.n == 0 for e in ests):
            continue
        diffs = [
            Estimate(e.value - ests[0].value, float("nan"), float("nan"), min(e.n, ests[0].n))
            for e in ests[1:]
        ]
        rows.append(ComparisonRow(study, condition, metric, ests, diffs, "none", True))
    return rows
