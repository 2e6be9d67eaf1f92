"""Saturation clamp study: one feature clamped to a sweep of levels, judged for concept presence.

All rows of the sweep (levels × prompts, plus one unclamped baseline row per prompt) go through
one batched generation; each generation and each judgement is appended to the run store as soon as
it exists, keyed by content hash, so a rerun redoes nothing that is already stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformer_lens import HookedTransformer

from harness.backend import LoadedSAE
from harness.features import ActivationStats, resolve_feature
from harness.generation import ClampTarget, GenRow, generate_rows
from harness.judge.base import Judge
from harness.plan import content_key, saturation_items
from harness.scoring import judge_generations
from harness.spec import Experiment, SaturationClamp
from harness.store import RunStore

__all__ = ["Progress", "StudyContext", "run_saturation"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class StudyContext:
    """What a study needs at run time (runtime-only options stay out of the item keys)."""

    experiment: Experiment
    model: HookedTransformer
    sae: LoadedSAE
    stats: ActivationStats | None  # None when no study needs max activations
    judges: list[Judge]  # the primary rubric's first
    store: RunStore
    batch_size: int | None  # None: generation picks it from a memory budget
    progress: Progress
    all_saes: dict[str, LoadedSAE]
    judge_batch: bool = False


def run_saturation(ctx: StudyContext, study: SaturationClamp, field: str) -> None:
    """Run (or resume) one saturation study on one SAE."""
    exp, sae = ctx.experiment, ctx.sae
    feature, candidates = resolve_feature(
        ctx.model, sae, study.feature, f"{field}.feature", ctx.all_saes
    )
    max_act = float(ctx.stats.max[feature]) if ctx.stats is not None else None
    feature_key = content_key({"sae": sae.label, "study": study.name, "what": "feature"})
    if feature_key not in ctx.store.done_keys("feature"):
        ctx.store.append(
            [
                {
                    "kind": "feature",
                    "key": feature_key,
                    "sae": sae.label,
                    "study": study.name,
                    "feature": feature,
                    "label": study.feature.label,
                    "method": study.feature.kind,
                    "max_activation": max_act,
                    "max_activation_source": ctx.stats.source if ctx.stats else None,
                    "candidates": [c.__dict__ for c in candidates[:5]],
                }
            ]
        )

    rows: list[tuple[str, dict[str, Any], GenRow]] = []
    for item in saturation_items(exp, sae.label, study):
        value: float | None = None
        if item.level is not None:
            value = item.level
            if study.level_unit == "max_activation":
                assert max_act is not None  # the runner computes stats whenever this is used
                value = item.level * max_act
        meta = {
            "kind": "generation",
            "key": item.key,
            "sae": sae.label,
            "study": study.name,
            "condition": item.condition,
            "level": item.level,
            "clamp_value": value,
            "prompt_index": item.prompt_index,
            "prompt": item.prompt,
            "feature": feature,
        }
        rows.append((item.key, meta, GenRow(item.prompt, None if value is None else (value,))))

    done = ctx.store.done_keys("generation")
    pending = [r for r in rows if r[0] not in done]
    target = ClampTarget(
        sae=sae.sae,
        hook_name=sae.hook_name,
        features=(feature,),
        keep_error_term=study.keep_error_term,
        conditional=study.conditional,
        positions=study.positions,
        mode=study.intervention,
    )
    finished = len(rows) - len(pending)
    ctx.progress(f"generate {sae.label} {study.name}", finished, len(rows))
    step = ctx.batch_size or len(pending) or 1
    for start in range(0, len(pending), step):
        chunk = pending[start : start + step]
        texts = generate_rows(
            ctx.model,
            [r[2] for r in chunk],
            target,
            max_new_tokens=exp.generation.max_new_tokens,
            greedy=exp.generation.greedy,
            temperature=exp.generation.temperature,
            seed=exp.seed,
            batch_size=ctx.batch_size,
        )
        ctx.store.append(
            {**meta, "continuation": text} for (_, meta, _), text in zip(chunk, texts, strict=True)
        )
        finished += len(chunk)
        ctx.progress(f"generate {sae.label} {study.name}", finished, len(rows))

    for judge in ctx.judges:
        judge_generations(
            ctx.store,
            exp,
            judge,
            ctx.batch_size or 256,
            ctx.progress,
            keys=[r[0] for r in rows],
            use_batches=ctx.judge_batch,
        )
