"""Specificity (Templeton et al. 2024): contexts where a feature fires, judged per activation bin.

Contexts from the corpus are binned by the feature's activation (fractions of its max, plus
contexts where it does not fire), ``n_per_bin`` are sampled per bin with the seed, and each is
judged on the 0–3 specificity rubric against the feature's description (``specificity_run``).
Summary rows per bin: mean score with a bootstrap CI and the share of 3s.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from harness.spec.refs import FeatureRef, Prompts, StudySpec
from harness.studies.contract import (
    Conds,
    Cost,
    Experiment,
    Headline,
    RowContext,
    RunStore,
    StudyKind,
    in_spec_order,
)

__all__ = ["INACTIVE", "KIND", "RUBRIC", "Specificity"]

INACTIVE = "inactive"
RUBRIC = "specificity"


class Specificity(StudySpec):
    """Judge contexts where a feature fires, per activation bin, on the 0–3 specificity rubric."""

    kind: Literal["specificity"] = "specificity"
    feature: FeatureRef
    bins: tuple[float, ...] = Field(
        default=(0.0, 0.25, 0.5, 0.75),
        min_length=1,
        description="Lower edges of activation bins as fractions of max activation.",
    )
    n_per_bin: int = Field(default=20, ge=1, le=1000)
    include_inactive: bool = True
    context_window: int = Field(default=8, ge=1, le=256)
    description: str | None = Field(
        default=None,
        description="What the feature is said to mean; None: the feature's label, else an "
        "auto-interpretation from its max-activating examples.",
    )
    corpus: Prompts | None = Field(
        default=None, description="Documents to sample contexts from; None: the toy corpus."
    )

    @field_validator("bins")
    @classmethod
    def _increasing_fractions(cls, bins: tuple[float, ...]) -> tuple[float, ...]:
        for b in bins:
            if not math.isfinite(b) or not 0 <= b < 1:
                raise ValueError(f"bin edge {b} must be a fraction in [0, 1)")
        if list(bins) != sorted(set(bins)):
            raise ValueError(f"bin edges {list(bins)} must be strictly increasing")
        return bins


class SpecificityKind(StudyKind[Specificity]):
    """The specificity study."""

    kind = "specificity"
    spec = Specificity
    engine = "harness.studies.specificity_run"
    rubrics = (RUBRIC,)
    metrics = (Headline("specificity_score", True),)

    def features(self, study: Specificity) -> list[tuple[str, FeatureRef]]:
        return [("feature", study.feature)]

    def judged_feature(self, study: Specificity) -> tuple[str, FeatureRef]:
        return ("feature", study.feature)

    def cost(self, exp: Experiment, study: Specificity, batch_size: int) -> Cost:
        bins = len(study.bins) + int(study.include_inactive)
        return Cost(bins, 0, 0, 0, bins * study.n_per_bin)

    def rows(self, rc: RowContext, study: Specificity) -> list[dict[str, Any]]:
        """Per (sae, bin): mean specificity score with a CI, and the share of 3s."""
        from harness.analysis.rows import estimate_row
        from harness.analysis.stats import bootstrap_mean

        rng = np.random.default_rng(rc.seed)
        contexts = [c for c in rc.store.records("context") if c["study"] == study.name]
        groups: dict[tuple[str, str, str], dict[int, int]] = {}
        for c in in_spec_order(rc.store, sorted(contexts, key=lambda c: c["prompt_index"])):
            groups.setdefault((c["sae"], c["study"], c["condition"]), {})
        for j in rc.store.judgements("*"):
            group = (j["sae"], j["study"], j["condition"])
            if group in groups and j["rubric"].startswith(f"{RUBRIC}@") and j["score"] is not None:
                groups[group][j["prompt_index"]] = j["score"]
        rows = []
        for group, by_index in groups.items():
            scores = [by_index[i] for i in sorted(by_index)]
            for metric, data in (
                ("specificity_score", [float(s) for s in scores]),
                ("share_of_3s", [1.0 if s == 3 else 0.0 for s in scores]),
            ):
                rows.append(estimate_row(group, metric, bootstrap_mean(data, rng)))
        return rows

    def section(
        self, store: RunStore, sae: str, study: Specificity, conds: Conds, plot_dir: Path | None
    ) -> list[str]:
        from harness.views.report.findings import specificity_section

        if not conds:
            return []
        return specificity_section(store, sae, study.name, conds, plot_dir)

    def item_values(self, run: Any, study: Specificity, metric: str) -> dict[Any, float]:
        """Contexts are sampled per feature, so their scores pair nothing across runs."""
        return {}

    def compare_rows(
        self, checkpoints: Any, study: Specificity, rng: np.random.Generator
    ) -> list[Any]:
        from harness.analysis.compare_rows import judged_context_rows

        return judged_context_rows(checkpoints, study.name, RUBRIC, "specificity_score", rng)


KIND = SpecificityKind()
