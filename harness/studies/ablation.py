"""Ablation (defence) and amplification (attack): features zeroed or clamped at chosen positions.

Per prompt, on the target prompts and on the control prompts: the next-token table, logit shifts
of named tokens and of the study's metric, KL of the next-token distribution; with ``generate``,
baseline and intervened continuations judged and measured like a saturation level
(``ablation_run``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from harness.spec.refs import (
    CheckedPositions,
    FeatureRef,
    Metric,
    Prompts,
    PromptSet,
    StudySpec,
    finite,
    prompt_list,
)
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
from harness.studies.items import BASELINE, WorkItem, content_key, make_item
from harness.studies.saturation import INTERVENTION_METRICS, MAX_ABSOLUTE

__all__ = ["KIND", "Ablation", "ablation_condition", "concept_of", "prompt_sets"]


class Ablation(StudySpec):
    """Zero (defence) or amplify (attack) features at chosen positions.

    Per prompt: the next-token table (top token with and without the intervention, changed or
    not, probability shift), logit shifts of named tokens and of an optional metric, KL of the
    next-token distribution; then judged continuations and topic drift. ``control_prompts`` get
    the same tables: the side effects.
    """

    kind: Literal["ablation"] = "ablation"
    features: tuple[FeatureRef, ...] = Field(min_length=1)
    mode: Literal["zero", "amplify"] = "zero"
    amplify_value: float = Field(
        default=20.0, gt=0, description="amplify: the value the features are clamped to."
    )
    positions: CheckedPositions = "all"
    prompts: Prompts
    control_prompts: Prompts | None = None
    tokens: tuple[str, ...] = Field(default=(), description="Tokens whose logit shifts to report.")
    metric: Metric | None = Field(
        default=None, description="A metric whose shift is reported with a CI and a paired test."
    )
    generate: bool = Field(
        default=True, description="Also generate, judge and measure drift of continuations."
    )
    keep_error_term: bool = True
    controls: tuple[Literal["random_feature"], ...] = Field(
        default=("random_feature",),
        description="random_feature: the same intervention on random features of matched max "
        "activation, on the target prompts (harness/studies/controls.py); () turns it off.",
    )
    control_draws: int = Field(default=2, ge=1, le=10, description="random draws per feature")

    @field_validator("amplify_value")
    @classmethod
    def _finite_amplify(cls, v: float) -> float:
        finite(v, "amplify_value")
        if v > MAX_ABSOLUTE:
            raise ValueError(f"amplify_value {v:g} is beyond {MAX_ABSOLUTE:g}; valid: (0, 1e5]")
        return v


def ablation_condition(study: Ablation) -> str:
    """How an ablation's intervention is named: ``zero`` or ``amplify=20``."""
    return "zero" if study.mode == "zero" else f"amplify={study.amplify_value:g}"


def prompt_sets(study: Ablation) -> list[tuple[str, tuple[str, ...]]]:
    """The study's prompt sets by name: ``target`` first, then ``control``."""
    sets = [("target", prompt_list(study.prompts))]
    if study.control_prompts is not None:
        sets.append(("control", prompt_list(study.control_prompts)))
    return sets


def concept_of(study: Ablation) -> tuple[str | None, tuple[str, ...]]:
    """The intervened features' labels joined (None when unlabelled) and all their keywords."""
    labels = list(dict.fromkeys(ref.label for ref in study.features if ref.label))
    keywords = tuple(k for ref in study.features for k in ref.keywords)
    return " + ".join(labels) or None, keywords


class AblationKind(StudyKind[Ablation]):
    """Zero or amplify features; next-token tables, shifts and (optionally) continuations."""

    kind = "ablation"
    spec = Ablation
    engine = "harness.studies.ablation_run"
    needs_stats = True
    metrics = (
        Headline("metric_shift", None),
        Headline("top1_changed", None),
        Headline("kl_mean", None),
        Headline("concept_score", None),
        *(
            replace(h, headline=False)
            for h in INTERVENTION_METRICS
            if h.metric not in ("concept_score", "top1_changed", "kl_mean")
        ),
    )

    def features(self, study: Ablation) -> list[tuple[str, FeatureRef]]:
        return [(f"features.{j}", ref) for j, ref in enumerate(study.features)]

    def prompt_sets(self, study: Ablation) -> list[tuple[str, PromptSet]]:
        return prompts_of(study, "prompts", "control_prompts")

    def lab_role_of(self, study: Ablation) -> Literal["defence", "attack"]:
        return "defence" if study.mode == "zero" else "attack"

    def validate(self, exp: Experiment, study: Ablation, path: str) -> None:
        from harness.errors import SpecError

        if (
            study.generate
            and exp.judge.is_offline()
            and not any(ref.keywords for ref in study.features)
            and not (exp.judge.effective_kind() == "offline" and concept_of(study)[0])
        ):
            raise SpecError(
                "the offline judge needs concept keywords (or, for the semantic judge, a label) "
                "to judge this ablation's continuations (keywords=(...) or label=... on a "
                "feature, or generate=False)",
                field=f"{path}.features.0.keywords",
            )

    def cost(self, exp: Experiment, study: Ablation, batch_size: int) -> Cost:
        new = exp.generation.max_new_tokens
        judges = 1 + len(exp.judge.extra_rubrics)
        prompts = sum(len(p) for _, p in prompt_sets(study))
        rows = len(self.items(exp, "", study))  # with its random-feature controls
        controls = len(prompt_list(study.prompts)) * study.control_draws if study.controls else 0
        next_token = prompts + controls
        passes = 2 * math.ceil(next_token / batch_size) + math.ceil(rows / batch_size) * (new + 1)
        return Cost(2, prompts, rows, passes, rows * judges)

    def items(self, exp: Experiment, sae: str, study: Ablation) -> list[WorkItem]:
        """Baseline and intervened continuation of every target and control prompt (``level``
        is the clamp value: 0 for zero ablation, ``amplify_value`` for amplify)."""
        if not study.generate:
            return []
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
                    items.append(
                        make_item(key, sae, study.name, prompt_set, cond, level, i, prompt)
                    )
        from harness.studies.controls import ablation_control_items

        cond = ablation_condition(study)
        return items + ablation_control_items(sae, study, identity, cond, value)

    def concept(self, study: Ablation) -> tuple[str, tuple[str, ...]]:
        label, keywords = concept_of(study)
        return label or study.name, keywords

    def rows(self, rc: RowContext, study: Ablation) -> list[dict[str, Any]]:
        from harness.analysis.effects import paired_rows

        concept = rc.scores.get(rc.primary_rubric, {})
        rows: list[dict[str, Any]] = []
        if study.generate:
            for sae in rc.generated_saes():
                if any(g[:2] == (sae, study.name) for g in concept):
                    cond = ablation_condition(study)
                    rows += paired_rows(sae, study.name, [cond], concept, rc.rng)
        if study.controls:
            from harness.studies.controls import ablation_control_rows

            rows += ablation_control_rows(rc, study, ablation_condition(study), concept)
        return rows

    def section(
        self, store: RunStore, sae: str, study: Ablation, conds: Conds, plot_dir: Path | None
    ) -> list[str]:
        from harness.studies.ablation_report import ablation_section
        from harness.studies.controls import ablation_controls_section, parse_control

        if not conds:
            return []
        main = {c: m for c, m in conds.items() if parse_control(c) is None}
        lines = ablation_section(store, sae, study.name, main, plot_dir)
        return lines + ablation_controls_section(study, ablation_condition(study), main)


KIND = AblationKind()
