"""SAE-quality statistics from stored per-sequence sums (no model code).

The headline numbers are ratios of per-sequence sums, which equal what ``sae_lens.evals.run_evals``
reports on the same sequences; resampling sequences gives bootstrap CIs, and resampling the same
sequences for two checkpoints gives paired CIs of their differences. Measuring them:
:mod:`harness.engine.sae_quality`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from harness.analysis.rows import summary_row
from harness.analysis.stats import N_RESAMPLES, Estimate, percentile_interval, resample_indices
from harness.spec.refs import ToyModel

if TYPE_CHECKING:
    from harness.spec.experiment import Experiment
    from harness.store import RunStore

__all__ = [
    "HIGHER_IS_BETTER",
    "QUALITY_CONDITION",
    "QUALITY_METRICS",
    "QUALITY_NEEDS_CORPUS",
    "QUALITY_STUDY",
    "SUMS",
    "paired_quality_difference",
    "quality_estimates",
    "quality_measurable",
    "quality_rows",
    "quality_values",
]

QUALITY_STUDY = "sae_quality"  # the study name SAE-quality rows carry (reserved)
QUALITY_CONDITION = "all"
QUALITY_NEEDS_CORPUS = (
    "a real model's SAE quality is measured on its own text; set stats_corpus (a PromptFile of "
    "documents, a tuple of texts or a HubDataset)"
)


def quality_measurable(exp: Experiment) -> bool:
    """Whether a run of ``exp`` measures SAE quality: asked for, and a corpus to measure it on
    (the toy corpus for the toy model; ``stats_corpus`` otherwise)."""
    return exp.sae_quality is not None and (
        isinstance(exp.model, ToyModel) or exp.stats_corpus is not None
    )


# metric → higher is better (None: neither, e.g. L0 is a sparsity setting, not a score)
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "explained_variance": True,
    "mse": False,
    "l0": None,
    "l1": None,
    "dead_fraction": False,
    "ce_loss_score": True,
    "ce_loss_increase": False,  # nats per token the spliced-in SAE adds to the clean CE loss
    "ce_loss_with_sae": False,
    "ce_loss_without_sae": None,
    "ce_loss_with_ablation": None,
    "kl_div_score": True,
    "kl_div_with_sae": False,
    "kl_div_with_ablation": None,
}
QUALITY_METRICS = tuple(HIGHER_IS_BETTER)
SUMS = (
    "tokens",
    "resid",
    "var",
    "l0",
    "l1",
    "ce_tokens",
    "ce_sae",
    "ce_clean",
    "ce_abl",
    "kl_tokens",
    "kl_sae",
    "kl_abl",
)


def quality_rows(store: RunStore, seed: int) -> list[dict[str, Any]]:
    """Summary rows (study ``sae_quality``, condition ``all``) for every measured SAE."""
    rng = np.random.default_rng(seed)
    rows = []
    for rec in sorted(store.records(QUALITY_STUDY), key=lambda r: str(r["sae"])):
        for metric, est in quality_estimates(rec, rng).items():
            group = (rec["sae"], QUALITY_STUDY, QUALITY_CONDITION)
            rows.append(summary_row(group, metric, est.value, est.ci_low, est.ci_high, est.n))
    return rows


def _ratios(s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every metric from (possibly resampled, last axis summed) per-sequence sums."""
    t = {k: v.sum(-1) for k, v in s.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "explained_variance": 1 - t["resid"] / t["var"],
            "mse": t["resid"] / t["tokens"],
            "l0": t["l0"] / t["tokens"],
            "l1": t["l1"] / t["tokens"],
            "ce_loss_score": (t["ce_abl"] - t["ce_sae"]) / (t["ce_abl"] - t["ce_clean"]),
            "ce_loss_increase": (t["ce_sae"] - t["ce_clean"]) / t["ce_tokens"],
            "ce_loss_with_sae": t["ce_sae"] / t["ce_tokens"],
            "ce_loss_without_sae": t["ce_clean"] / t["ce_tokens"],
            "ce_loss_with_ablation": t["ce_abl"] / t["ce_tokens"],
            "kl_div_score": (t["kl_abl"] - t["kl_sae"]) / t["kl_abl"],
            "kl_div_with_sae": t["kl_sae"] / t["kl_tokens"],
            "kl_div_with_ablation": t["kl_abl"] / t["kl_tokens"],
        }


def _arrays(record: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(record["per_sequence"][k], dtype=float) for k in SUMS}


def quality_values(record: dict[str, Any]) -> dict[str, float]:
    """The headline value of every metric (what ``sae_lens.evals`` reports on these tokens)."""
    values = {k: float(v) for k, v in _ratios(_arrays(record)).items()}
    values["dead_fraction"] = 1.0 - record["alive"] / record["d_sae"]
    return values


def quality_estimates(
    record: dict[str, Any],
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
    confidence: float = 0.95,
) -> dict[str, Estimate]:
    """Each metric with a bootstrap CI over sequences (n = sequences). The dead fraction is a
    count over the whole sample and gets no CI."""
    arrays = _arrays(record)
    n = len(arrays["tokens"])
    idx = resample_indices(n, rng, n_resamples)
    draws = _ratios({k: v[idx] for k, v in arrays.items()})
    values = quality_values(record)
    out = {k: Estimate(values[k], *percentile_interval(draws[k], confidence), n) for k in draws}
    out["dead_fraction"] = Estimate(values["dead_fraction"], float("nan"), float("nan"), n)
    return {k: out[k] for k in QUALITY_METRICS}


def paired_quality_difference(
    before: dict[str, Any],
    after: dict[str, Any],
    metric: str,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
    confidence: float = 0.95,
) -> Estimate:
    """``after − before`` for one metric, resampling the same sequences for both; the CI is NaN
    when the two were measured on different tokens (then nothing pairs) or for the dead fraction."""
    diff = quality_values(after)[metric] - quality_values(before)[metric]
    n = int(before["n_sequences"])
    paired = before["tokens_sha256"] == after["tokens_sha256"]
    if not paired or metric == "dead_fraction":
        return Estimate(diff, float("nan"), float("nan"), n if paired else 0)
    idx = resample_indices(n, rng, n_resamples)
    a = _ratios({k: v[idx] for k, v in _arrays(before).items()})[metric]
    b = _ratios({k: v[idx] for k, v in _arrays(after).items()})[metric]
    return Estimate(diff, *percentile_interval(b - a, confidence), n)
