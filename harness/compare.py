"""Checkpoint comparison: the same studies over two or more SAE checkpoints, side by side.

Checkpoints are the SAEs of one or more stored runs of the same studies. The first checkpoint is
the reference; every other one gets, per headline metric, the difference from the reference with
a paired bootstrap CI: SAE-quality metrics resample the same token sequences for both (they were
measured on the same tokens), item metrics (judged scores, drift, next-token effects, metric
shifts) pair the same prompts of the same study and condition. Specificity scores come from
contexts sampled per feature, so nothing pairs: their difference gets an independent bootstrap
CI. Features are matched across checkpoints by decoder cosine to the reference's feature.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import SpecError
from harness.metrics.stats import Estimate, bootstrap_mean
from harness.notebook import ItemKey, LoadedRun
from harness.plan import BASELINE
from harness.sae_quality import (
    HIGHER_IS_BETTER,
    QUALITY_METRICS,
    QUALITY_STUDY,
    paired_quality_difference,
    quality_estimates,
)
from harness.spec import LocalSAE, PretrainedSAE, ToySAE, sae_label

__all__ = [
    "Checkpoint",
    "ComparisonRow",
    "FeatureMatch",
    "checkpoints_of",
    "compare",
    "comparison_name",
    "excludes_zero",
    "match_features",
    "sae_from_arg",
]

# Headline item metrics per study kind: (metric, higher is better)
HEADLINES: dict[str, tuple[tuple[str, bool | None], ...]] = {
    "saturation": (("concept_score", True), ("fluency_score", True), ("drift", None)),
    "ablation": (
        ("metric_shift", None),
        ("top1_changed", None),
        ("kl_mean", None),
        ("concept_score", None),
    ),
}
_NAN = Estimate(float("nan"), float("nan"), float("nan"), 0)


@dataclass(frozen=True)
class Checkpoint:
    """One SAE of one stored run."""

    name: str  # unique in the comparison
    run: LoadedRun
    position: int  # the SAE's position in its run's spec
    sae: str  # its label inside the run

    def ref(self) -> Any:
        return self.run.experiment.saes[self.position]


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


@dataclass(frozen=True)
class FeatureMatch:
    """Which feature each checkpoint uses in a study, and how it matches the reference's."""

    study: str
    features: list[int | None]  # per checkpoint
    labels: list[str | None]
    cosine_to_reference: list[float | None]  # decoder cosine of each checkpoint's feature
    best_match: list[tuple[int, float] | None] = field(default_factory=list)


def excludes_zero(d: Estimate, eps: float = 1e-9) -> bool:
    """Whether a difference's CI lies clear of 0 (float noise below ``eps`` is 0)."""
    return d.n > 0 and not math.isnan(d.ci_low) and (d.ci_low > eps or d.ci_high < -eps)


def sae_from_arg(text: str) -> ToySAE | LocalSAE | PretrainedSAE:
    """A checkpoint named on the command line: ``toy:NAME``, ``local:PATH`` (or a path to a
    folder holding cfg.json) or ``release:RELEASE:SAE_ID``."""
    kind, _, rest = text.partition(":")
    if kind == "toy" and rest:
        return ToySAE(name=rest)
    if kind == "local" and rest:
        return LocalSAE(path=rest)
    if kind == "release" and ":" in rest:
        release, _, sae_id = rest.partition(":")
        return PretrainedSAE(release=release, sae_id=sae_id)
    if (Path(text) / "cfg.json").is_file():
        return LocalSAE(path=text)
    raise SpecError(f"--sae {text!r}: use toy:NAME, local:PATH or release:RELEASE:SAE_ID")


def checkpoints_of(runs: list[LoadedRun]) -> list[Checkpoint]:
    """Every SAE of every run, named by its label (suffixed with the run id where two runs use
    the same label)."""
    raw = [(run, i, sae_label(ref)) for run in runs for i, ref in enumerate(run.experiment.saes)]
    labels = [label for _, _, label in raw]
    out = []
    for run, i, label in raw:
        name = label if labels.count(label) == 1 else f"{label} ({run.run_id})"
        out.append(Checkpoint(name, run, i, label))
    if len(out) < 2:
        raise SpecError(
            "a comparison needs at least two SAE checkpoints (one run with several SAEs, "
            "several runs, or --sae given twice or more)"
        )
    return out


def comparison_name(checkpoints: list[Checkpoint]) -> str:
    """A stable file name for the comparison of these checkpoints."""
    key = "|".join(f"{c.run.run_id}:{c.sae}" for c in checkpoints)
    return f"compare-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def compare(checkpoints: list[Checkpoint], seed: int = 0) -> list[ComparisonRow]:
    """Every headline metric of every checkpoint, with differences from the first."""
    rng = np.random.default_rng(seed)
    rows = _quality_rows(checkpoints, rng)
    kinds: dict[str, str] = {}
    for c in checkpoints:
        for s in c.run.experiment.studies:
            kinds.setdefault(s.name, s.kind)
    for study, kind in kinds.items():
        for metric, better in HEADLINES.get(kind, ()):
            rows += _item_rows(checkpoints, study, metric, better, rng)
        if kind == "specificity":
            rows += _specificity_rows(checkpoints, study, rng)
        if kind == "attribution":
            rows += _summary_rows(checkpoints, study, ("spearman", "precision_at_5"))
    return rows


def _quality_rows(checkpoints: list[Checkpoint], rng: np.random.Generator) -> list[ComparisonRow]:
    records = [c.run.quality_records().get(c.position) for c in checkpoints]
    if not any(records):
        return []
    ests = [quality_estimates(r, rng) if r else None for r in records]
    rows = []
    ref = records[0]
    for metric in QUALITY_METRICS:
        diffs = [
            paired_quality_difference(ref, r, metric, rng) if ref and r else _NAN
            for r in records[1:]
        ]
        paired = all(d.n > 0 and not math.isnan(d.ci_low) for d in diffs)
        rows.append(
            ComparisonRow(
                QUALITY_STUDY,
                "all",
                metric,
                [e[metric] if e else _NAN for e in ests],
                diffs,
                "sequences" if paired else "none",
                HIGHER_IS_BETTER[metric],
            )
        )
    return rows


def _item_rows(
    checkpoints: list[Checkpoint],
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
        ests = [bootstrap_mean(v, rng) for v in vals]
        diffs = []
        for p in per[1:]:
            common = sorted(k for k in per[0] if k[0] == cond and k in p)
            diffs.append(bootstrap_mean([p[k] - per[0][k] for k in common], rng))
        rows.append(ComparisonRow(study, cond, metric, ests, diffs, "prompts", better))
    return rows


def _specificity_rows(
    checkpoints: list[Checkpoint], study: str, rng: np.random.Generator
) -> list[ComparisonRow]:
    per: list[dict[str, list[float]]] = []
    for c in checkpoints:
        groups: dict[str, list[float]] = {}
        prov = c.run.provenance
        rubric = prov.get("specificity_rubric")
        recs = c.run.records
        if rubric and "kind" in recs:
            js = recs[(recs["kind"] == "judgement") & (recs["rubric"] == rubric)]
            for j in js.to_dict("records"):
                if j["sae"] == c.sae and j["study"] == study and j["judge"] == prov["judge"]:
                    if j["score"] is not None and j["score"] == j["score"]:
                        groups.setdefault(j["condition"], []).append(float(j["score"]))
        per.append(groups)
    conditions = dict.fromkeys(cond for g in per for cond in g)
    rows = []
    for cond in conditions:
        vals = [g.get(cond, []) for g in per]
        diffs = [_unpaired_difference(vals[0], v, rng) for v in vals[1:]]
        ests = [bootstrap_mean(v, rng) for v in vals]
        rows.append(ComparisonRow(study, cond, "specificity_score", ests, diffs, "unpaired", True))
    return rows


def _unpaired_difference(
    a: list[float], b: list[float], rng: np.random.Generator, n_resamples: int = 2000
) -> Estimate:
    """mean(b) − mean(a) with an independent percentile bootstrap (a, b resampled apart)."""
    if not a or not b:
        return _NAN
    x, y = np.asarray(a), np.asarray(b)
    draws = y[rng.integers(0, y.size, (n_resamples, y.size))].mean(1) - x[
        rng.integers(0, x.size, (n_resamples, x.size))
    ].mean(1)
    low, high = np.quantile(draws, [0.025, 0.975])
    return Estimate(float(y.mean() - x.mean()), float(low), float(high), min(x.size, y.size))


def _summary_rows(
    checkpoints: list[Checkpoint], study: str, metrics: tuple[str, ...]
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


def match_features(checkpoints: list[Checkpoint]) -> tuple[list[FeatureMatch], str]:
    """Per study, each checkpoint's feature and its decoder cosine to the reference's feature,
    plus the reference feature's best decoder match in each checkpoint. Loads the SAEs (not the
    model); when they cannot be loaded, the features are listed without cosines and the second
    value says why."""
    studies: dict[str, list[dict[str, Any] | None]] = {}
    for i, c in enumerate(checkpoints):
        recs = c.run.records
        if "kind" not in recs:
            continue
        # interventions store a feature record; specificity studies name it in each context
        chosen = recs[recs["kind"].isin(["feature", "context"]) & (recs["sae"] == c.sae)]
        for r in chosen.to_dict("records"):
            slots = studies.setdefault(r["study"], [None] * len(checkpoints))
            if slots[i] is None:
                if r["kind"] == "context":
                    r = {**r, "label": _study_label(c, r["study"])}
                slots[i] = r
    if not studies:
        return [], ""
    saes, note = _load_saes(checkpoints)
    out = []
    for study, recs in studies.items():
        feats = [int(r["feature"]) if r else None for r in recs]
        labels = [r.get("label") if r else None for r in recs]
        cos: list[float | None] = [None] * len(checkpoints)
        best: list[tuple[int, float] | None] = [None] * len(checkpoints)
        ref_feature = feats[0]
        if saes is not None and ref_feature is not None:
            for i, f in enumerate(feats):
                if f is None or saes[i].sae.cfg.d_in != saes[0].sae.cfg.d_in:
                    continue
                cos[i] = _cosine(saes[0], ref_feature, saes[i], f)
                from harness.features import match_by_decoder

                top = match_by_decoder(saes[0], ref_feature, saes[i], top=1)[0]
                best[i] = (top.index, top.score)
        out.append(FeatureMatch(study, feats, labels, cos, best))
    return out, note


def _study_label(c: Checkpoint, study: str) -> str | None:
    for s in c.run.experiment.studies:
        if s.name == study:
            ref = getattr(s, "feature", None)
            return getattr(ref, "label", None)
    return None


def _cosine(a: Any, i: int, b: Any, j: int) -> float:
    u = a.sae.W_dec[i].detach().float()
    v = b.sae.W_dec[j].detach().float()
    return float((u @ v) / (u.norm() * v.norm() + 1e-12))


def _load_saes(checkpoints: list[Checkpoint]) -> tuple[list[Any] | None, str]:
    from harness.backend import load_sae
    from harness.errors import HarnessError

    try:
        return [load_sae(c.ref(), c.sae) for c in checkpoints], ""
    except HarnessError as exc:
        return None, f"decoder cosines unavailable: {exc}"
