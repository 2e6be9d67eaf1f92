"""Saturation clamp study: one feature clamped to a sweep of levels, judged for concept presence.

All rows of the sweep (levels × prompts, plus one unclamped baseline row per prompt) go through
one batched generation; each generation and each judgement is appended to the run store as soon as
it exists, keyed by content hash, so a rerun redoes nothing that is already stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformer_lens import HookedTransformer

from harness.backend import LoadedSAE
from harness.features import ActivationStats, resolve_feature
from harness.generation import ClampTarget, GenRow, generate_rows
from harness.judge.base import Judge, JudgeRequest
from harness.spec import Experiment, SaturationClamp, prompt_list
from harness.store import RunStore

__all__ = ["BASELINE", "Progress", "StudyContext", "condition_name", "run_saturation"]

BASELINE = "baseline"
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class StudyContext:
    """What a study needs at run time (runtime-only options stay out of the item keys)."""

    experiment: Experiment
    model: HookedTransformer
    sae: LoadedSAE
    stats: ActivationStats
    judge: Judge
    store: RunStore
    batch_size: int
    progress: Progress
    all_saes: dict[str, LoadedSAE]


def condition_name(level: float, unit: str) -> str:
    """How a clamp level is named in records and tables: ``10x`` or ``v=3.5``."""
    return f"{level:g}x" if unit == "max_activation" else f"v={level:g}"


def _key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def run_saturation(ctx: StudyContext, study: SaturationClamp, field: str) -> None:
    """Run (or resume) one saturation study on one SAE."""
    exp, sae = ctx.experiment, ctx.sae
    feature, candidates = resolve_feature(
        ctx.model, sae, study.feature, f"{field}.feature", ctx.all_saes
    )
    max_act = float(ctx.stats.max[feature])
    feature_key = _key({"sae": sae.label, "study": study.name, "what": "feature"})
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
                    "max_activation": max_act,
                    "max_activation_source": ctx.stats.source,
                    "candidates": [c.__dict__ for c in candidates[:5]],
                }
            ]
        )

    # The item identity: everything that changes the output, nothing runtime-only.
    base_id = {
        "model": exp.model.model_dump(mode="json"),
        "sae": sae.label,
        "feature": feature,
        "generation": exp.generation.model_dump(mode="json"),
        "seed": exp.seed,
        "keep_error_term": study.keep_error_term,
        "conditional": study.conditional,
    }
    rows: list[tuple[str, dict[str, Any], GenRow]] = []
    for i, prompt in enumerate(prompt_list(study.prompts)):
        conditions: list[tuple[str, float | None, float | None]] = [(BASELINE, None, None)]
        for level in study.levels:
            clamp = level * max_act if study.level_unit == "max_activation" else level
            conditions.append((condition_name(level, study.level_unit), level, clamp))
        for cond, lvl, value in conditions:
            key = _key({**base_id, "prompt": prompt, "clamp_value": value})
            meta = {
                "kind": "generation",
                "key": key,
                "sae": sae.label,
                "study": study.name,
                "condition": cond,
                "level": lvl,
                "clamp_value": value,
                "prompt_index": i,
                "prompt": prompt,
                "feature": feature,
            }
            rows.append((key, meta, GenRow(prompt, None if value is None else (value,))))

    done = ctx.store.done_keys("generation")
    pending = [r for r in rows if r[0] not in done]
    target = ClampTarget(
        sae=sae.sae,
        hook_name=sae.hook_name,
        features=(feature,),
        keep_error_term=study.keep_error_term,
        conditional=study.conditional,
    )
    finished = len(rows) - len(pending)
    ctx.progress(f"generate {sae.label} {study.name}", finished, len(rows))
    for start in range(0, len(pending), ctx.batch_size):
        chunk = pending[start : start + ctx.batch_size]
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

    _judge_generations(ctx, study, [r[0] for r in rows])


def _judge_generations(ctx: StudyContext, study: SaturationClamp, keys: list[str]) -> None:
    generations = ctx.store.done_keys("generation")
    judged = {
        r["of"]
        for r in ctx.store.records("judgement")
        if r["judge"] == ctx.judge.name and r["rubric"] == ctx.judge.rubric.ident
    }
    todo = [generations[k] for k in keys if k not in judged]
    concept = study.feature.label or study.name
    total, finished = len(keys), len(keys) - len(todo)
    ctx.progress(f"judge {ctx.sae.label} {study.name}", finished, total)
    for start in range(0, len(todo), ctx.batch_size):
        chunk = todo[start : start + ctx.batch_size]
        requests = [
            JudgeRequest(text=g["continuation"], concept=concept, keywords=study.feature.keywords)
            for g in chunk
        ]
        verdicts = ctx.judge.judge(requests)
        ctx.store.append(
            {
                "kind": "judgement",
                "key": _key({"of": g["key"], "judge": v.judge, "rubric": v.rubric}),
                "of": g["key"],
                "sae": g["sae"],
                "study": g["study"],
                "condition": g["condition"],
                "prompt_index": g["prompt_index"],
                **v.model_dump(),
            }
            for g, v in zip(chunk, verdicts, strict=True)
        )
        finished += len(chunk)
        ctx.progress(f"judge {ctx.sae.label} {study.name}", finished, total)
