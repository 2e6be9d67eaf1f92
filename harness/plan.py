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

__all__ = [
    "BASELINE",
    "Plan",
    "PlanRow",
    "WorkItem",
    "ablation_condition",
    "ablation_items",
    "condition_name",
    "content_key",
    "generation_items",
    "plan",
    "prompt_sets",
    "split_condition",
]

BASELINE = "baseline"


def content_key(payload: dict[str, Any]) -> str:
    """A stable 24-hex-digit hash of a JSON-able payload (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def condition_name(level: float, unit: str) -> str:
    """How a clamp level is named in records and tables: ``10x`` or ``v=3.5``."""
    return f"{level:g}x" if unit == "max_activation" else f"v={level:g}"


def ablation_condition(study: Ablation) -> str:
    """How an ablation's intervention is named: ``zero`` or ``amplify=20``."""
    return "zero" if study.mode == "zero" else f"amplify={study.amplify_value:g}"


def split_condition(condition: str) -> tuple[str, str]:
    """``neutral:10x`` → (``neutral``, ``10x``); a target-prompt condition has no prefix."""
    if ":" in condition:
        prompt_set, cond = condition.split(":", 1)
        return prompt_set, cond
    return "target", condition


def _set_condition(prompt_set: str, condition: str) -> str:
    return condition if prompt_set == "target" else f"{prompt_set}:{condition}"


def prompt_sets(study: SaturationClamp | Ablation) -> list[tuple[str, tuple[str, ...]]]:
    """The study's prompt sets by name: ``target`` first, then ``neutral`` / ``control``."""
    sets = [("target", prompt_list(study.prompts))]
    if isinstance(study, SaturationClamp) and study.neutral_prompts is not None:
        sets.append(("neutral", prompt_list(study.neutral_prompts)))
    if isinstance(study, Ablation) and study.control_prompts is not None:
        sets.append(("control", prompt_list(study.control_prompts)))
    return sets


@dataclass(frozen=True)
class WorkItem:
    """One generation to produce (and then judge).

    ``condition`` carries the prompt set for non-target prompts (``neutral:10x``), so summaries
    group target and neutral prompts apart.
    """

    key: str
    sae: str
    study: str
    condition: str
    level: float | None  # None: the unclamped baseline
    prompt_index: int
    prompt: str
    prompt_set: str = "target"


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
    for prompt_set, prompts in prompt_sets(study):
        extra = {} if prompt_set == "target" else {"prompt_set": prompt_set}
        for i, prompt in enumerate(prompts):
            for level in levels:
                cond = BASELINE if level is None else condition_name(level, study.level_unit)
                key = content_key({**identity, **extra, "prompt": prompt, "level": level})
                items.append(_item(key, sae, study.name, prompt_set, cond, level, i, prompt))
    return items


def _item(
    key: str,
    sae: str,
    study: str,
    prompt_set: str,
    condition: str,
    level: float | None,
    index: int,
    prompt: str,
) -> WorkItem:
    cond = _set_condition(prompt_set, condition)
    return WorkItem(key, sae, study, cond, level, index, prompt, prompt_set)


def ablation_items(exp: Experiment, sae: str, study: Ablation) -> list[WorkItem]:
    """Baseline and intervened continuation of every target and control prompt (``level`` is
    the clamp value: 0 for zero ablation, ``amplify_value`` for amplify)."""
    value = study.amplify_value if study.mode == "amplify" else 0.0
    identity = {
        "study": study.name,
        "kind": "ablation",
        "model": exp.model.model_dump(mode="json", exclude={"device"}),
        "sae": sae,
        "features": [f.model_dump(mode="json", exclude={"label"}) for f in study.features],
        "mode": study.mode,
        "value": value,
        "positions": study.positions,
        "keep_error_term": study.keep_error_term,
        "generation": exp.generation.model_dump(mode="json"),
        "seed": exp.seed,
    }
    items = []
    for prompt_set, prompts in prompt_sets(study):
        for i, prompt in enumerate(prompts):
            for cond, level in ((BASELINE, None), (ablation_condition(study), value)):
                key = content_key(
                    {**identity, "set": prompt_set, "prompt": prompt, "intervened": level}
                )
                items.append(_item(key, sae, study.name, prompt_set, cond, level, i, prompt))
    return items


def generation_items(exp: Experiment, sae: str, study: Study) -> list[WorkItem]:
    """The generations a study makes on one SAE (none for studies that do not generate)."""
    if isinstance(study, SaturationClamp):
        return saturation_items(exp, sae, study)
    if isinstance(study, Ablation) and study.generate:
        return ablation_items(exp, sae, study)
    return []


def _count(study: Study, exp: Experiment, batch_size: int) -> tuple[int, int, int, int, int]:
    """(conditions, prompts, generations, forward passes, judge calls) of a study on one SAE.

    Forward passes count generation steps plus the teacher-forced passes (next-token effects,
    perplexity); judge calls count one per generation and rubric.
    """
    new = exp.generation.max_new_tokens
    judges = 1 + len(exp.judge.extra_rubrics)
    if isinstance(study, SaturationClamp):
        prompts = sum(len(p) for _, p in prompt_sets(study))
        rows = prompts * (len(study.levels) + 1)
        passes = math.ceil(rows / batch_size) * new + 2 * math.ceil(rows / batch_size)
        return len(study.levels) + 1, prompts, rows, passes, rows * judges
    if isinstance(study, Ablation):
        prompts = sum(len(p) for _, p in prompt_sets(study))
        rows = 2 * prompts if study.generate else 0
        passes = 2 * math.ceil(prompts / batch_size) + math.ceil(rows / batch_size) * (new + 1)
        return 2, prompts, rows, passes, rows * judges
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
            items.extend(generation_items(exp, label, study))
    return Plan(rows, items)
