"""Expand an experiment into work items keyed by content hash, and count what a run will cost.

A work item's key hashes everything that changes its output (model, SAE, feature reference, level,
prompt, decoding settings, seed) and nothing runtime-only (device, batch size, concurrency, output
paths), so the same item has the same key in every run of the same spec: that is what resume and
"never pay twice" match on.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from harness.spec import (
    RUNNABLE_STUDIES,
    Ablation,
    Attribution,
    ContrastiveSearch,
    Experiment,
    SaturationClamp,
    Specificity,
    Study,
    prompt_list,
    sae_label,
)

__all__ = ["BASELINE", "Plan", "PlanRow", "WorkItem", "condition_name", "content_key", "plan"]

BASELINE = "baseline"


def content_key(payload: dict[str, Any]) -> str:
    """A stable 24-hex-digit hash of a JSON-able payload (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def condition_name(level: float, unit: str) -> str:
    """How a clamp level is named in records and tables: ``10x`` or ``v=3.5``."""
    return f"{level:g}x" if unit == "max_activation" else f"v={level:g}"


@dataclass(frozen=True)
class WorkItem:
    """One generation to produce (and then judge)."""

    key: str
    sae: str
    study: str
    condition: str
    level: float | None  # None: the unclamped baseline
    prompt_index: int
    prompt: str


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
    runnable: bool


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


def saturation_items(exp: Experiment, sae: str, study: SaturationClamp) -> list[WorkItem]:
    """Baseline plus one row per level, for every prompt."""
    identity = {
        "study": study.name,
        "model": exp.model.model_dump(mode="json", exclude={"device"}),
        "sae": sae,
        "feature": study.feature.model_dump(mode="json", exclude={"label"}),
        "unit": study.level_unit,
        "generation": exp.generation.model_dump(mode="json"),
        "seed": exp.seed,
        "keep_error_term": study.keep_error_term,
        "conditional": study.conditional,
        "intervention": study.intervention,
        "positions": study.positions,
    }
    items = []
    levels: list[float | None] = [None, *study.levels]
    for i, prompt in enumerate(prompt_list(study.prompts)):
        for level in levels:
            cond = BASELINE if level is None else condition_name(level, study.level_unit)
            key = content_key({**identity, "prompt": prompt, "level": level})
            items.append(WorkItem(key, sae, study.name, cond, level, i, prompt))
    return items


def _count(study: Study, exp: Experiment, batch_size: int) -> tuple[int, int, int, int, int]:
    """(conditions, prompts, generations, forward passes, judge calls) of a study on one SAE."""
    new = exp.generation.max_new_tokens
    if isinstance(study, SaturationClamp):
        prompts = len(prompt_list(study.prompts))
        rows = prompts * (len(study.levels) + 1)
        return len(study.levels) + 1, prompts, rows, math.ceil(rows / batch_size) * new, rows
    if isinstance(study, Ablation):
        prompts = len(prompt_list(study.prompts))
        controls = len(prompt_list(study.control_prompts)) if study.control_prompts else 0
        rows = (prompts + controls) * (len(study.features) + 1)
        return len(study.features) + 1, prompts + controls, 0, math.ceil(rows / batch_size), 0
    if isinstance(study, Specificity):
        bins = len(study.bins) + int(study.include_inactive)
        return bins, 0, 0, 0, bins * study.n_per_bin
    if isinstance(study, Attribution):
        prompts = len(prompt_list(study.prompts))
        passes = 2 * math.ceil(prompts / batch_size) + math.ceil(prompts * study.top_k / batch_size)
        return 1, prompts, 0, passes, 0
    assert isinstance(study, ContrastiveSearch)
    prompts = len(prompt_list(study.positive)) + len(prompt_list(study.negative))
    return 1, prompts, 0, math.ceil(prompts / batch_size), 0


def plan(exp: Experiment, batch_size: int = 64) -> Plan:
    """Every SAE × study with its counts, and the generation work items of runnable studies."""
    rows: list[PlanRow] = []
    items: list[WorkItem] = []
    for ref in exp.saes:
        label = sae_label(ref)
        for study in exp.studies:
            conditions, prompts, gens, passes, judge_calls = _count(study, exp, batch_size)
            rows.append(
                PlanRow(
                    label,
                    study.name,
                    study.kind,
                    conditions,
                    prompts,
                    gens,
                    passes,
                    judge_calls,
                    study.kind in RUNNABLE_STUDIES,
                )
            )
            if isinstance(study, SaturationClamp):
                items.extend(saturation_items(exp, label, study))
    return Plan(rows, items)
