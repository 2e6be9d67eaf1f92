"""Expand an experiment into work items keyed by content hash, and count what a run will cost.

Each study kind plans its own items and cost (``StudyKind.items`` / ``StudyKind.cost``); this
module puts them together over the SAEs of the spec. Keys: :mod:`harness.studies.items`.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.spec import Experiment, sae_label
from harness.studies.controls import parse_control
from harness.studies.items import BASELINE, WorkItem, condition_name, content_key, split_condition
from harness.studies.registry import kind_of

__all__ = [
    "BASELINE",
    "Plan",
    "PlanRow",
    "WorkItem",
    "condition_name",
    "content_key",
    "plan",
    "split_condition",
]


@dataclass(frozen=True)
class PlanRow:
    """What one SAE × study costs."""

    sae: str
    study: str
    kind: str
    conditions: int
    prompts: int
    generations: int
    forward_passes: int
    judge_calls: int
    controls: int = 0  # control conditions (random feature draws × levels, prompt-only, …)


@dataclass(frozen=True)
class Plan:
    """The expanded experiment."""

    rows: list[PlanRow]
    items: list[WorkItem]

    def totals(self) -> dict[str, int]:
        """Summed counts over all rows."""
        return {
            "generations": sum(r.generations for r in self.rows),
            "forward_passes": sum(r.forward_passes for r in self.rows),
            "judge_calls": sum(r.judge_calls for r in self.rows),
        }


def plan(exp: Experiment, batch_size: int = 64) -> Plan:
    """Every SAE × study with its counts, and the generation work items."""
    rows: list[PlanRow] = []
    items: list[WorkItem] = []
    for ref in exp.saes:
        label = sae_label(ref)
        for study in exp.studies:
            kind = kind_of(study)
            c = kind.cost(exp, study, batch_size)
            mine = kind.items(exp, label, study)
            controls = {i.condition for i in mine if parse_control(i.condition) is not None}
            rows.append(
                PlanRow(
                    label,
                    study.name,
                    study.kind,
                    c.conditions,
                    c.prompts,
                    c.generations,
                    c.forward_passes,
                    c.judge_calls,
                    len(controls),
                )
            )
            items.extend(mine)
    return Plan(rows, items)
