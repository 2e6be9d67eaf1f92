"""Generating a sweep's controls (the engine side of :mod:`harness.studies.controls`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from harness.engine.generation import ClampTarget
from harness.engine.interventions import Direction
from harness.studies.common import generate_items
from harness.studies.contract import StudyContext
from harness.studies.controls import parse_control
from harness.studies.items import WorkItem

__all__ = [
    "NEAREST",
    "ablation_controls",
    "generate_controls",
    "random_direction",
    "random_features",
]

NEAREST = 20  # random features are drawn among the features this close in max activation


def random_features(
    ctx: StudyContext, feature: int, draws: int, exclude: Sequence[int] = ()
) -> list[int]:
    """``draws`` features of the SAE other than ``feature`` (and ``exclude``) whose max
    activation is among the :data:`NEAREST` closest to its (on a log scale), in a seeded order;
    dead features never."""
    import numpy as np

    maxes = np.asarray(ctx.stats.max, dtype=float)
    own = math.log(max(float(maxes[feature]), 1e-8))
    skip = {feature, *exclude}
    alive = [i for i in range(len(maxes)) if i not in skip and maxes[i] > 0]
    alive.sort(key=lambda i: (abs(math.log(maxes[i]) - own), i))
    pool = alive[:NEAREST]
    rng = np.random.default_rng([ctx.experiment.seed, feature, 17])
    picked = rng.choice(len(pool), size=min(draws, len(pool)), replace=False)
    return [pool[int(j)] for j in picked]


def random_direction(ctx: StudyContext, feature: int) -> Direction:
    """A seeded random direction with the norm of ``feature``'s decoder row."""
    import torch

    w_dec = ctx.sae.sae.W_dec
    gen = torch.Generator().manual_seed(ctx.experiment.seed * 1_000_003 + feature)
    d = torch.randn(w_dec.shape[1], generator=gen, dtype=torch.float32)
    d = d / d.norm() * w_dec[feature].detach().float().norm().cpu()
    return Direction(d[None, :].to(w_dec.device))


def generate_controls(
    ctx: StudyContext,
    items: Sequence[WorkItem],
    feature: int,
    target: ClampTarget,
    value: Callable[[float], float],
    draws: int,
    per_max: bool,
) -> None:
    """Generate every control item of ``items`` (one batched generation per control)."""
    groups: dict[tuple[str, int | None], list[WorkItem]] = {}
    for it in items:
        parsed = parse_control(it.condition)
        if parsed is not None:
            groups.setdefault((parsed[0], parsed[1]), []).append(it)
    for (control, draw), group in groups.items():
        chosen: int | None = feature
        fn: Callable[[float], float] | None = value
        t = target
        if control == "random_feature":
            assert draw is not None
            chosen = random_features(ctx, feature, draws)[draw - 1]
            peak = float(ctx.stats.max[chosen]) if per_max else 1.0
            fn = peak.__mul__
            t = replace(target, features=(chosen,))
        elif control == "wrong_sign":
            fn = _negated(value)
        elif control == "additive":
            t = replace(target, mode="add", conditional=False)
        elif control == "random_direction":
            chosen = None  # no feature: a direction
            t = ClampTarget(
                sae=random_direction(ctx, feature),
                hook_name=target.hook_name,
                features=(0,),
                positions=target.positions,
                mode="add",
            )
        else:  # prompt_only: the unsteered model, instructed
            chosen, fn = None, None
        _generate(ctx, group, t, fn, chosen, f" ({group[0].condition.split('@')[0]} control)")


def _negated(value: Callable[[float], float]) -> Callable[[float], float]:
    return lambda level: -value(level)


def _generate(
    ctx: StudyContext,
    items: list[WorkItem],
    target: ClampTarget,
    fn: Callable[[float], float] | None,
    chosen: int | None,
    label: str,
) -> None:
    def values(it: WorkItem) -> tuple[float, ...] | None:
        return None if fn is None or it.level is None else (fn(it.level),)

    def extra(it: WorkItem) -> dict[str, Any]:
        v = values(it)
        return {"clamp_value": None if v is None else v[0], "feature": chosen}

    generate_items(ctx, items, target, values, extra, label)


def ablation_controls(
    ctx: StudyContext,
    study: Any,
    items: Sequence[WorkItem],
    features: list[int],
    target: ClampTarget,
    values: tuple[float, ...],
    record: Callable[[str, ClampTarget, dict[str, Any]], None],
) -> None:
    """An ablation's random-feature controls: per draw, one random feature of matched max
    activation for each studied feature, intervened on the same way; their next-token records
    (through ``record(condition, target, identity extra)``) and generations."""
    from harness.studies.ablation import ablation_condition

    cond = ablation_condition(study)
    drawn = [random_features(ctx, f, study.control_draws, features) for f in features]
    for d in range(min(len(x) for x in drawn)):
        chosen = tuple(x[d] for x in drawn)
        control_target = replace(target, features=chosen)
        control = f"random_feature#{d + 1}@{cond}"
        record(control, control_target, {"control": "random_feature", "features": list(chosen)})
        group = [it for it in items if it.condition == control]
        if group:
            generate_items(
                ctx,
                group,
                control_target,
                lambda it: values,
                lambda it, chosen=chosen: {  # type: ignore[misc]
                    "clamp_value": it.level,
                    "feature": chosen[0],
                    "features": list(chosen),
                },
                f" (random_feature#{d + 1} control)",
            )
