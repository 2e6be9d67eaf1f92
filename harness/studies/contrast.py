"""Contrastive search: features ranked by mean activation difference between two prompt sets.

Each candidate's score carries a bootstrap CI over prompts; the top three come with their
max-activating corpus examples (and a Neuronpedia link for SAELens releases that have one).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.spec.refs import Prompts, PromptSet, StudySpec, prompt_list
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

__all__ = ["KIND", "ContrastiveSearch"]


class ContrastiveSearch(StudySpec):
    """Rank features by mean activation difference between positive and negative prompts."""

    kind: Literal["contrast"] = "contrast"
    positive: Prompts
    negative: Prompts
    position: Literal["last", "max"] = "last"
    top_k: int = Field(default=10, ge=1, le=1000)
    corpus: Prompts | None = Field(
        default=None, description="Documents for max-activating examples; None: the toy corpus."
    )


class ContrastKind(StudyKind[ContrastiveSearch]):
    """The contrastive search."""

    kind = "contrast"
    spec = ContrastiveSearch
    engine = "harness.studies.contrast_run"

    def prompt_sets(self, study: ContrastiveSearch) -> list[tuple[str, PromptSet]]:
        return prompts_of(study, "positive", "negative")

    def cost(self, exp: Experiment, study: ContrastiveSearch, batch_size: int) -> Cost:
        prompts = len(prompt_list(study.positive)) + len(prompt_list(study.negative))
        return Cost(1, prompts, 0, math.ceil(prompts / batch_size), 0)

    def rows(self, rc: RowContext, study: ContrastiveSearch) -> list[dict[str, Any]]:
        """Per SAE: the margin of the first candidate over the second (CI over prompts) and the
        share of bootstrap resamples in which the first stays first."""
        import numpy as np

        from harness.analysis.rows import estimate_row, summary_row
        from harness.analysis.stats import choice_stability

        rows = []
        for rec in in_spec_order(rc.store, rc.store.records("candidates")):
            cands = rec["candidates"]
            if rec["study"] != study.name or len(cands) < 2 or "values_positive" not in cands[0]:
                continue
            rng = np.random.default_rng([rc.seed, 11])
            margin, stable = choice_stability(
                np.array([c["values_positive"] for c in cands]),
                np.array([c["values_negative"] for c in cands]),
                rng,
            )
            group = (rec["sae"], rec["study"], f"feature {cands[0]['feature']}")
            rows.append(estimate_row(group, "margin_over_second", margin))
            rows.append(summary_row(group, "rank_stability", stable, stable, stable, margin.n))
        return rows

    def section(
        self,
        store: RunStore,
        sae: str,
        study: ContrastiveSearch,
        conds: Conds,
        plot_dir: Path | None,
    ) -> list[str]:
        from harness.views.report.findings import contrast_section

        return contrast_section(store, sae, study.name, conds)


KIND = ContrastKind()
