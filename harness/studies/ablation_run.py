"""Running an ablation (the engine side of :mod:`harness.studies.ablation`).

Per prompt, on the target prompts and on the control prompts: the next-token table (baseline
top token, intervened top token, changed or not, probability shift), logit shifts of named
tokens and of the study's metric, and the KL divergence of the next-token distribution. With
``generate``: baseline and intervened continuations, judged and measured (perplexity, topic
drift) like a saturation level. Everything is stored as it is made, keyed by content hash.
"""

from __future__ import annotations

from typing import Any

from harness.engine.features import Candidate, resolve_feature
from harness.engine.generation import ClampTarget
from harness.engine.tokens import single_token_id
from harness.spec.refs import prompt_list
from harness.studies.ablation import KIND, Ablation, ablation_condition, concept_of, prompt_sets
from harness.studies.attribution_run import metric_fn
from harness.studies.common import (
    generate_items,
    judge_items,
    measure_generations,
    record_feature,
    record_next_token,
    record_top_features,
)
from harness.studies.contract import StudyContext
from harness.studies.controls import parse_control
from harness.studies.items import WorkItem
from harness.studies.saturation import concept_text
from harness.studies.saturation_run import check_clamp_values

__all__ = [
    "check",
    "judge",
    "run",
]


def check(ctx: StudyContext, study: Ablation, path: str) -> None:
    """Before the first generation of the run: every watched token is one token of this model,
    and an amplify value fits the model's dtype."""
    for k, word in enumerate(study.tokens):
        single_token_id(ctx.model, word, f"{path}.tokens.{k}")
    if study.mode != "amplify":
        return
    feats = [
        resolve_feature(ctx.model, ctx.sae, ref, f"{path}.features.{j}", ctx.all_saes)[0]
        for j, ref in enumerate(study.features)
    ]
    check_clamp_values(ctx, feats, [study.amplify_value], f"{path}.amplify_value")


def run(ctx: StudyContext, study: Ablation, field: str) -> None:
    """Run (or resume) one ablation study on one SAE."""
    sae = ctx.sae
    features: list[int] = []
    candidates: list[Candidate] = []
    for j, ref in enumerate(study.features):
        index, found = resolve_feature(ctx.model, sae, ref, f"{field}.features.{j}", ctx.all_saes)
        features.append(index)
        candidates = candidates or found
    labels = list(dict.fromkeys(ref.label for ref in study.features if ref.label))
    record_feature(
        ctx,
        study.name,
        features,
        " + ".join(labels) or None,
        study.features[0].kind,
        candidates,
    )
    value = study.amplify_value if study.mode == "amplify" else 0.0
    values = (value,) * len(features)
    target = ClampTarget(
        sae=sae.sae,
        hook_name=sae.hook_name,
        features=tuple(features),
        keep_error_term=study.keep_error_term,
        positions=study.positions,
    )
    named = {
        word: single_token_id(ctx.model, word, f"{field}.tokens.{k}")
        for k, word in enumerate(study.tokens)
    }
    metric = metric_fn(ctx.model, study.metric, field) if study.metric is not None else None
    identity = {
        "study": study.name,
        "sae": sae.label,
        "model": ctx.experiment.model.model_dump(mode="json", exclude={"device"}),
        "features": features,
        "value": value,
        "positions": study.positions,
        "keep_error_term": study.keep_error_term,
        "tokens": list(study.tokens),
        "metric": study.metric.model_dump(mode="json") if study.metric else None,
    }
    record_top_features(ctx, study.name, prompt_sets(study))
    for prompt_set, prompts in prompt_sets(study):
        record_next_token(
            ctx,
            study.name,
            ablation_condition(study),
            prompt_set,
            list(prompts),
            target,
            values,
            identity,
            named,
            metric,
        )
    items = KIND.items(ctx.experiment, sae.label, study)
    if study.controls:
        from harness.studies.controls_run import ablation_controls

        def record(condition: str, control: ClampTarget, extra: dict[str, Any]) -> None:
            prompts = list(prompt_list(study.prompts))
            identity_c = {**identity, **extra}
            record_next_token(
                ctx,
                study.name,
                condition,
                "target",
                prompts,
                control,
                values,
                identity_c,
                named,
                metric,
            )

        ablation_controls(ctx, study, items, features, target, values, record)
    if not study.generate:
        return

    def row_values(item: WorkItem) -> tuple[float, ...] | None:
        return None if item.level is None else values

    generate_items(
        ctx,
        [it for it in items if parse_control(it.condition) is None],
        target,
        row_values,
        lambda it: {"clamp_value": it.level, "feature": features[0], "features": features},
    )
    label, keywords = concept_of(study)
    measure_generations(ctx, items, concept_text(label, keywords))
    judge_items(ctx, items)


def judge(ctx: StudyContext, study: Ablation, path: str) -> None:
    """The driver's step: judge the study's stored continuations on ``ctx.sae``."""
    judge_items(ctx, KIND.items(ctx.experiment, ctx.sae.label, study))
