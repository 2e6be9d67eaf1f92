"""Attribution vs ablation: which features drive a metric, and how far to trust the fast estimate.

One forward and one backward pass give every feature's attribution, ``∂metric/∂f × (0 − f)``
with the SAE error term held fixed; the top-k features are then zeroed one at a time for their
exact effect (``attribution_run``). Agreement: Spearman and Pearson with bootstrap CIs over
prompts, sign agreement and top-5 overlap.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from harness.spec.refs import Metric, Prompts, PromptSet, StudySpec, prompt_list
from harness.store.records import Record
from harness.studies.contract import (
    Conds,
    Cost,
    Experiment,
    RowContext,
    RunStore,
    StudyKind,
    in_spec_order,
    prompts_of,
)

__all__ = ["KIND", "Attribution", "AttributionRecord"]


class Attribution(StudySpec):
    """Attribution (grad × (0 − act)) per feature vs true ablations of the top-k features."""

    kind: Literal["attribution"] = "attribution"
    prompts: Prompts
    metric: Metric
    top_k: int = Field(default=20, ge=1, le=1000)
    sample: int = Field(
        default=256,
        ge=10,
        le=4096,
        description="Features also ablated independently of attribution, to measure how many of "
        "the true strongest it finds: all of the SAE's when it has at most this many, else a "
        "seeded random sample of this size, a quarter of it the most active features.",
    )


class AttributionRecord(Record):
    """One SAE's attribution study: top features with attribution and true ablation effects,
    the agreement statistics (CIs over prompts) and the per-position attribution."""

    kind: Literal["attribution"] = "attribution"
    sae: str
    study: str
    metric_baseline: float
    n_prompts: int
    features: list[dict[str, float]]
    agreement: dict[str, dict[str, float]]
    by_position: list[dict[str, Any]]
    per_prompt: dict[str, list[list[float]]] | None = None  # runs stored before it: None
    # features chosen independently of attribution, with per-prompt attribution and ablation
    sample: dict[str, Any] | None = None


RECALL_AT = (5, 20)


def _sample_rows(rec: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Attribution judged on features chosen independently of it: recall of the true top-k by
    ablation, and the agreement statistics over the whole sample."""
    from harness.analysis.rows import estimate_row
    from harness.analysis.stats import agreement, topk_recall

    sample = rec["sample"]
    attr, abl = np.array(sample["attribution"]), np.array(sample["ablation"])
    group = (rec["sae"], rec["study"], f"sample{len(sample['features'])}")
    rng = np.random.default_rng([seed, 13])
    rows = [
        estimate_row(group, f"recall_at_{k}", topk_recall(attr, abl, k, rng))
        for k in RECALL_AT
        if k < attr.shape[1]
    ]
    rows += [estimate_row(group, m, e) for m, e in agreement(attr, abl, rng).items()]
    return rows


class AttributionKind(StudyKind[Attribution]):
    """Attribution vs ablation."""

    kind = "attribution"
    spec = Attribution
    engine = "harness.studies.attribution_run"
    records = (AttributionRecord,)

    def prompt_sets(self, study: Attribution) -> list[tuple[str, PromptSet]]:
        return prompts_of(study, "prompts")

    def cost(self, exp: Experiment, study: Attribution, batch_size: int) -> Cost:
        prompts = len(prompt_list(study.prompts))
        passes = 2 * math.ceil(prompts / batch_size) + math.ceil(prompts * study.top_k / batch_size)
        return Cost(1, prompts, 0, passes, 0)

    def rows(self, rc: RowContext, study: Attribution) -> list[dict[str, Any]]:
        """Agreement of attribution with true ablation per SAE, with bootstrap CIs over prompts
        recomputed from the stored per-prompt values (older runs: the stored CIs)."""
        from harness.analysis.rows import estimate_row
        from harness.analysis.stats import Estimate, agreement

        rows = []
        for rec in in_spec_order(rc.store, rc.store.records("attribution")):
            if rec["study"] != study.name:
                continue
            group = (rec["sae"], rec["study"], f"top{len(rec['features'])}")
            if rec.get("per_prompt"):
                per = rec["per_prompt"]
                rng = np.random.default_rng(rc.seed)
                estimates = agreement(np.array(per["attribution"]), np.array(per["ablation"]), rng)
            else:
                estimates = {k: Estimate(**e) for k, e in rec["agreement"].items()}
            rows += [estimate_row(group, metric, est) for metric, est in estimates.items()]
            if rec.get("sample"):
                rows += _sample_rows(rec, rc.seed)
        return rows

    def section(
        self, store: RunStore, sae: str, study: Attribution, conds: Conds, plot_dir: Path | None
    ) -> list[str]:
        from harness.views.report.findings import attribution_section

        if not any(
            r["sae"] == sae and r["study"] == study.name for r in store.records("attribution")
        ):
            return []
        return attribution_section(store, sae, study.name, plot_dir, conds)

    def compare_rows(
        self, checkpoints: Any, study: Attribution, rng: np.random.Generator
    ) -> list[Any]:
        from harness.analysis.compare_rows import stored_rows

        return stored_rows(checkpoints, study.name, ("spearman", "precision_at_5"))


KIND = AttributionKind()
