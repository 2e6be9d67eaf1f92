"""Running a saturation sweep (the engine side of :mod:`harness.studies.saturation`).

All rows of the sweep (levels × prompts, plus one unclamped baseline row per prompt; on the
target prompts and, when given, the neutral prompts) go through one batched generation. Then, per
level and prompt set, the next-token effects (KL of the next-token distribution: the side effect
on text the clamp should leave alone); per continuation its perplexity under the unclamped model
and its topic drift; and the judgements on every rubric. Each result is stored as soon as it
exists, keyed by content hash, so a rerun redoes nothing that is already stored.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.engine.features import resolve_feature
from harness.engine.generation import ClampTarget
from harness.spec.refs import prompt_list
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
from harness.studies.items import WorkItem, condition_name, content_key
from harness.studies.saturation import KIND, SaturationClamp, concept_text, prompt_sets

__all__ = [
    "check",
    "check_clamp_values",
    "judge",
    "run",
]


def check_clamp_values(
    ctx: StudyContext, features: list[int], values: list[float], path: str
) -> None:
    """Before the first generation: a clamp value times the feature's decoder row must stay far
    inside the model dtype's range (its square is taken by LayerNorm), else every continuation
    would be overflow garbage judged as data."""
    import math

    import torch

    from harness.errors import SpecError

    dtype = ctx.model.cfg.dtype
    limit = math.sqrt(torch.finfo(dtype).max) / 4
    w_dec = ctx.sae.sae.W_dec
    for f in features:
        peak = float(w_dec[f].detach().abs().max())
        for j, v in enumerate(values):
            if abs(v) * peak > limit:
                raise SpecError(
                    f"clamp value {v:g} on feature {f} reaches {abs(v) * peak:.3g} in one "
                    f"residual dimension, past what {dtype} holds safely ({limit:.3g}); use a "
                    f"smaller level",
                    field=f"{path}.{j}" if len(values) > 1 else path,
                )


def check(ctx: StudyContext, study: SaturationClamp, path: str) -> None:
    """Before the first generation of the run: every level's clamp value fits the dtype."""
    feature, _ = resolve_feature(ctx.model, ctx.sae, study.feature, f"{path}.feature", ctx.all_saes)
    max_act = float(ctx.stats.max[feature]) if ctx.stats is not None else 1.0
    scale = max_act if study.level_unit == "max_activation" else 1.0
    check_clamp_values(ctx, [feature], [lv * scale for lv in study.levels], f"{path}.levels")


def run(ctx: StudyContext, study: SaturationClamp, field: str) -> None:
    """Run (or resume) one saturation study on one SAE."""
    sae = ctx.sae
    feature, candidates = resolve_feature(
        ctx.model, sae, study.feature, f"{field}.feature", ctx.all_saes
    )
    max_act = float(ctx.stats.max[feature]) if ctx.stats is not None else None
    record_feature(ctx, study.name, [feature], study.feature.label, study.feature.kind, candidates)

    def value(level: float) -> float:
        if study.level_unit == "max_activation":
            assert max_act is not None  # the runner computes stats whenever this is used
            return level * max_act
        return level

    def values(item: WorkItem) -> tuple[float, ...] | None:
        return None if item.level is None else (value(item.level),)

    target = ClampTarget(
        sae=sae.sae,
        hook_name=sae.hook_name,
        features=(feature,),
        keep_error_term=study.keep_error_term,
        conditional=study.conditional,
        positions=study.positions,
        mode=study.intervention,
    )
    items = KIND.items(ctx.experiment, sae.label, study)
    sweep = [it for it in items if parse_control(it.condition) is None]
    generate_items(
        ctx,
        sweep,
        target,
        values,
        lambda it: {
            "clamp_value": None if it.level is None else value(it.level),
            "feature": feature,
        },
    )
    if len(sweep) < len(items):
        from harness.studies.controls_run import generate_controls

        per_max = study.level_unit == "max_activation"
        generate_controls(ctx, items, feature, target, value, study.control_draws, per_max)
    by_set: dict[str, list[str]] = {}
    for it in sweep:
        if it.level is None:
            by_set.setdefault(it.prompt_set, []).append(it.prompt)
    record_top_features(ctx, study.name, prompt_sets(study))
    for level in study.levels:
        for prompt_set, prompts in by_set.items():
            record_next_token(
                ctx,
                study.name,
                condition_name(level, study.level_unit),
                prompt_set,
                prompts,
                target,
                (value(level),),
                {
                    "study": study.name,
                    "sae": sae.label,
                    "model": ctx.experiment.model.model_dump(mode="json", exclude={"device"}),
                    "feature": feature,
                    "value": value(level),
                    "intervention": study.intervention,
                    "positions": study.positions,
                    "conditional": study.conditional,
                    "keep_error_term": study.keep_error_term,
                },
            )
    record_readback(ctx, study, feature, target, value)
    measure_generations(ctx, items, concept_text(study.feature.label, study.feature.keywords))
    judge_items(ctx, items)


def judge(ctx: StudyContext, study: SaturationClamp, path: str) -> None:
    """The driver's step: judge the study's stored continuations on ``ctx.sae``."""
    judge_items(ctx, KIND.items(ctx.experiment, ctx.sae.label, study))


def record_readback(
    ctx: StudyContext,
    study: SaturationClamp,
    feature: int,
    target: ClampTarget,
    value: Callable[[float], float],
) -> None:
    """Per non-zero level: the clamped feature re-encoded from the clamped activation, as a
    share of the clamp value, mean over the target prompts' real tokens (BOS excluded)."""
    import torch

    from harness.engine.tokens import real_tokens

    done = ctx.store.done_keys("readback")
    levels = [lv for lv in study.levels if lv > 0]
    keys = {
        lv: content_key({"sae": ctx.sae.label, "study": study.name, "readback": lv})
        for lv in levels
    }
    if all(k in done for k in keys.values()):
        return
    tokens = ctx.model.to_tokens(list(prompt_list(study.prompts)), padding_side="left")
    with torch.no_grad():
        _, cache = ctx.model.run_with_cache(tokens, names_filter=ctx.sae.hook_name)
        x = cache[ctx.sae.hook_name].float()
        f_now = ctx.sae.encode(x)[..., feature]
        row = ctx.sae.sae.W_dec[feature].detach().float()
        real = real_tokens(ctx.model, tokens)
        records = []
        for lv in levels:
            v = value(lv)
            moved = x + (v - f_now)[..., None] * row
            read = ctx.sae.encode(moved)[..., feature]
            ratio = float(read[real].mean() / v)
            records.append(
                {
                    "kind": "readback",
                    "key": keys[lv],
                    "sae": ctx.sae.label,
                    "study": study.name,
                    "condition": condition_name(lv, study.level_unit),
                    "value": v,
                    "ratio": ratio,
                    "tokens": int(real.sum()),
                }
            )
    ctx.store.append([r for r in records if r["key"] not in done])
