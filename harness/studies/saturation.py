"""Saturation clamp: one feature clamped to a sweep of levels while generating.

All rows of the sweep (levels × prompts, plus one unclamped baseline row per prompt; on the
target prompts and, when given, the neutral prompts) go through one batched generation
(``saturation_run``). Summary rows: judged scores and measures per level, each level vs the
baseline (paired, Holm), Page's trend test, and the recommended level chosen on half the prompts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.spec.refs import (
    CheckedPositions,
    FeatureRef,
    Prompts,
    PromptSet,
    StudySpec,
    ToyModel,
    prompt_list,
)
from harness.store.records import Record
from harness.studies.contract import (
    Conds,
    Cost,
    Experiment,
    Headline,
    RowContext,
    RunStore,
    StudyKind,
    prompts_of,
)
from harness.studies.items import BASELINE, WorkItem, condition_name, content_key, make_item

__all__ = [
    "INTERVENTION_METRICS",
    "KIND",
    "MAX_ABSOLUTE",
    "MAX_LEVEL",
    "SaturationClamp",
    "concept_text",
    "prompt_sets",
]

MAX_LEVEL = 1000.0  # × max activation (Golden Gate Claude used 10×)
MAX_ABSOLUTE = 1e5


class SaturationClamp(StudySpec):
    """Clamp one feature to a sweep of levels while generating; baselines are unclamped rows."""

    kind: Literal["saturation"] = "saturation"
    feature: FeatureRef
    levels: tuple[float, ...] = Field(min_length=1)
    level_unit: Literal["max_activation", "absolute"] = "max_activation"
    prompts: Prompts
    intervention: Literal["clamp", "add"] = Field(
        default="clamp",
        description="clamp: set the feature to the level; add: add level × W_dec[i] (steering).",
    )
    positions: CheckedPositions = "all"
    conditional: bool = False
    keep_error_term: bool = True
    neutral_prompts: Prompts | None = Field(
        default=None,
        description="Prompts the clamp should leave alone: every level also runs on them, and "
        "their drift is reported next to the target prompts' (clamp specificity).",
    )
    controls: tuple[
        Literal["random_feature", "random_direction", "wrong_sign", "prompt_only", "additive"],
        ...,
    ] = Field(
        default=("random_feature", "random_direction", "wrong_sign", "prompt_only", "additive"),
        description="Controls generated at every non-zero level on the target prompts "
        "(harness/studies/controls.py); additive: the same value added along the decoder row "
        "instead of clamped (a clamping sweep only); () turns them off.",
    )
    control_draws: int = Field(
        default=2, ge=1, le=10, description="random features drawn for the random_feature control"
    )
    control_instruction: str | None = Field(
        default=None,
        min_length=1,
        description="the prompt-only baseline's prefix ({concept}: the feature's label, else its "
        "keywords); None: 'Talk about {concept}. ' on a pretrained model, 'tell me something on "
        "{concept} . ' on the toy world (whose tokenizer knows only its corpus's words). Every "
        "word of it must be one the model's tokenizer knows, or the control is refused.",
    )
    fluency_threshold: float = Field(
        default=1.0,
        ge=0,
        description="Recommended level: the best concept score whose mean judged fluency (0–2) "
        "stays at or above this; chosen on half of the prompts, reported on the other half.",
    )

    @field_validator("controls")
    @classmethod
    def _distinct_controls(cls, controls: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(controls)) != len(controls):
            raise ValueError(f"controls {list(controls)} contain duplicates")
        return controls

    @field_validator("levels")
    @classmethod
    def _finite_non_negative(cls, levels: tuple[float, ...]) -> tuple[float, ...]:
        for level in levels:
            if not math.isfinite(level) or level < 0:
                raise ValueError(f"clamp level {level} must be finite and >= 0")
        if len(set(levels)) != len(levels):
            raise ValueError(f"clamp levels {list(levels)} contain duplicates")
        return levels

    @model_validator(mode="after")
    def _sane_levels(self) -> SaturationClamp:
        bound = MAX_LEVEL if self.level_unit == "max_activation" else MAX_ABSOLUTE
        for j, level in enumerate(self.levels):
            if level > bound:
                unit = "× max activation" if self.level_unit == "max_activation" else "(absolute)"
                raise ValueError(
                    f"levels.{j}: {level:g} {unit} is beyond {bound:g}, where the residual stream "
                    f"overflows or the text is nothing but the concept; valid: 0..{bound:g}"
                )
        return self


# judged scores and measures of generated continuations, and next-token effects
INTERVENTION_METRICS = (
    Headline("concept_score", True),
    Headline("fluency_score", True),
    Headline("drift", None),
    Headline("instruction_score", True, headline=False),
    Headline("concept_gain", True, headline=False),
    Headline("nll", False, headline=False),
    Headline("kl_mean", False, headline=False),
    Headline("top1_changed", None, headline=False),
)


def concept_text(label: str | None, keywords: tuple[str, ...]) -> str | None:
    """What a feature's concept is said to be, for embedding: its label, else its keywords."""
    return label or (", ".join(keywords) if keywords else None)


class ReadbackRecord(Record):
    """What the SAE's encoder reads back of a clamp: the clamped feature's mean activation, re-
    encoded from the clamped activation on the target prompts' tokens, over the clamp value."""

    kind: Literal["readback"] = "readback"
    sae: str
    study: str
    condition: str
    value: float
    ratio: float
    tokens: int


def _concept(study: SaturationClamp) -> str | None:
    return concept_text(study.feature.label, study.feature.keywords)


def prompt_sets(study: SaturationClamp) -> list[tuple[str, tuple[str, ...]]]:
    """The study's prompt sets by name: ``target`` first, then ``neutral``."""
    sets = [("target", prompt_list(study.prompts))]
    if study.neutral_prompts is not None:
        sets.append(("neutral", prompt_list(study.neutral_prompts)))
    return sets


def _identity(exp: Experiment, sae: str, study: SaturationClamp) -> dict[str, Any]:
    return {
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


class SaturationKind(StudyKind[SaturationClamp]):
    """The saturation sweep."""

    kind = "saturation"
    spec = SaturationClamp
    engine = "harness.studies.saturation_run"
    needs_stats = True
    metrics = INTERVENTION_METRICS
    records = (ReadbackRecord,)
    lab_role = "attack"

    def features(self, study: SaturationClamp) -> list[tuple[str, FeatureRef]]:
        return [("feature", study.feature)]

    def judged_feature(self, study: SaturationClamp) -> tuple[str, FeatureRef]:
        return ("feature", study.feature)

    def prompt_sets(self, study: SaturationClamp) -> list[tuple[str, PromptSet]]:
        return prompts_of(study, "prompts", "neutral_prompts")

    def validate(self, exp: Experiment, study: SaturationClamp, path: str) -> None:
        from harness.errors import SpecError
        from harness.spec.refs import PretrainedModel

        if (
            isinstance(exp.model, PretrainedModel)
            and study.level_unit == "max_activation"
            and exp.stats_corpus is None
        ):
            raise SpecError(
                "levels in multiples of max activation need activation statistics over a corpus "
                "of this model's text: set stats_corpus (a PromptFile of documents, a tuple of "
                "texts or a HubDataset), or use level_unit='absolute'",
                field=f"{path}.level_unit",
            )

        if "prompt_only" in study.controls and not _concept(study):
            raise SpecError(
                "the prompt-only control asks the model to talk about the feature's concept: "
                "give the feature a label or keywords, or leave 'prompt_only' out of controls",
                field=f"{path}.controls",
            )

    def instructions(self, exp: Experiment, study: SaturationClamp) -> list[tuple[str, str]]:
        from harness.studies.controls import PROMPT_ONLY, instruction

        concept = _concept(study)
        if PROMPT_ONLY not in study.controls or not concept:
            return []
        toy = isinstance(exp.model, ToyModel)
        return [("control_instruction", instruction(study, concept, toy))]

    def cost(self, exp: Experiment, study: SaturationClamp, batch_size: int) -> Cost:
        new = exp.generation.max_new_tokens
        judges = 1 + len(exp.judge.extra_rubrics)
        prompts = sum(len(p) for _, p in prompt_sets(study))
        rows = prompts * (len(study.levels) + 1)
        rows += len(self._control_items(exp, "", study))
        passes = math.ceil(rows / batch_size) * new + 2 * math.ceil(rows / batch_size)
        return Cost(len(study.levels) + 1, prompts, rows, passes, rows * judges)

    def items(self, exp: Experiment, sae: str, study: SaturationClamp) -> list[WorkItem]:
        """Baseline plus one row per level, for every prompt."""
        identity = _identity(exp, sae, study)
        items = []
        levels: list[float | None] = [None, *study.levels]
        for prompt_set, prompts in prompt_sets(study):
            extra = {} if prompt_set == "target" else {"prompt_set": prompt_set}
            for i, prompt in enumerate(prompts):
                for level in levels:
                    cond = BASELINE if level is None else condition_name(level, study.level_unit)
                    key = content_key({**identity, **extra, "prompt": prompt, "level": level})
                    items.append(
                        make_item(key, sae, study.name, prompt_set, cond, level, i, prompt)
                    )
        return items + self._control_items(exp, sae, study)

    def _control_items(self, exp: Experiment, sae: str, study: SaturationClamp) -> list[WorkItem]:
        from harness.studies.controls import control_items

        toy = isinstance(exp.model, ToyModel)
        return control_items(sae, study, _identity(exp, sae, study), _concept(study), toy)

    def concept(self, study: SaturationClamp) -> tuple[str, tuple[str, ...]]:
        return study.feature.label or study.name, study.feature.keywords

    def rows(self, rc: RowContext, study: SaturationClamp) -> list[dict[str, Any]]:
        from harness.analysis.effects import paired_rows, recommended_rows, trend_rows
        from harness.analysis.outcomes import outcome_rows

        concept = rc.scores.get(rc.primary_rubric, {})
        conditions = [condition_name(lv, study.level_unit) for lv in study.levels]
        rows: list[dict[str, Any]] = []
        saes = rc.generated_saes()
        for sae in saes:
            if not any(g[:2] == (sae, study.name) for g in concept):
                continue
            rows += paired_rows(sae, study.name, conditions, concept, rc.rng)
            rows += outcome_rows(sae, study.name, conditions, concept)
            ordered = [c for _, c in sorted(zip(study.levels, conditions, strict=True))]
            rows += trend_rows(sae, study.name, ordered, concept)
            rows += recommended_rows(
                sae,
                study.name,
                study.levels,
                study.fluency_threshold,
                conditions,
                concept,
                rc.scores.get("fluency", {}),
                rc.seed,
            )
            if study.controls:
                from harness.studies.controls import control_rows, drift_table, sweep_pairs

                tables = {"concept": concept, "drift": drift_table(rc.store, study.name)}
                rows += control_rows(sae, study.name, sweep_pairs(study), tables, rc.rng)
        return rows

    def section(
        self,
        store: RunStore,
        sae: str,
        study: SaturationClamp,
        conds: Conds,
        plot_dir: Path | None,
    ) -> list[str]:
        from harness.studies.saturation_report import saturation_section

        if not conds:
            return []
        from harness.studies.controls import controls_section, parse_control

        unit = " × max" if study.level_unit == "max_activation" else " (absolute)"
        main = {c: m for c, m in conds.items() if parse_control(c) is None}
        lines = saturation_section(
            store, sae, study.name, main, plot_dir, study.fluency_threshold, unit
        )
        return lines + _readback(store, sae, study) + controls_section(study, main)


def _readback(store: RunStore, sae: str, study: SaturationClamp) -> list[str]:
    """One sentence: what a clamp value means in the SAE's own reading of the activation."""
    got = [r for r in store.records("readback") if r["sae"] == sae and r["study"] == study.name]
    if not got:
        return []
    parts = ", ".join(f"{r['condition']} {r['ratio']:.2f}" for r in got)
    return [
        "Clamp values are in the SAE decomposition's units: the activation is moved by (v − f) "
        "along the feature's decoder row. Re-encoding the clamped activation, the SAE's encoder "
        f"reads the feature back at this share of v on the target prompts' {got[0]['tokens']} "
        f"tokens: {parts}.",
        "",
    ]


KIND = SaturationKind()
