"""Contrastive search: features ranked by mean activation difference between two prompt sets.

Each candidate's score carries a bootstrap CI over prompts; the top three come with their
max-activating corpus examples (and a Neuronpedia link for SAELens releases that have one).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import Field

from harness.spec.refs import Prompts, PromptSet, StudySpec, prompt_list
from harness.studies.contract import (
    Conds,
    Cost,
    Experiment,
    RunStore,
    StudyKind,
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

    def section(
        self,
        store: RunStore,
        sae: str,
        study: ContrastiveSearch,
        conds: Conds,
        plot_dir: Path | None,
    ) -> list[str]:
        from harness.views.report.findings import contrast_section

        return contrast_section(store, sae, study.name)


KIND = ContrastKind()
