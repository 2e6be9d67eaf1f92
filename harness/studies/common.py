"""What running the intervention studies (saturation clamp, ablation) shares (engine side).

Each step appends its records to the run store as soon as they exist, keyed by content hash, so a
rerun skips what is stored: the feature record, the batched generations, the next-token effects,
the measurements of every continuation (perplexity, topic drift) and the judgements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.engine.effects import MetricFn, continuation_nll, next_token_effects
from harness.engine.features import Candidate
from harness.engine.generation import ClampTarget, GenRow, generate_rows
from harness.judge.service import judge_generations
from harness.studies.contract import StudyContext
from harness.studies.items import BASELINE, WorkItem, content_key, set_condition, split_condition

__all__ = [
    "generate_items",
    "judge_items",
    "measure_generations",
    "record_feature",
    "record_next_token",
    "record_top_features",
]

TOP_FEATURES = 5


def record_top_features(
    ctx: StudyContext, study: str, prompt_sets: Sequence[tuple[str, Sequence[str]]]
) -> None:
    """The most active features on each prompt, without any intervention (one ``top_features``
    record per prompt): each feature's largest activation over the prompt's tokens (BOS
    excluded) and the token where it peaks. The lab report's "top features per prompt"."""
    import torch

    from harness.engine.tokens import corpus_batches, real_tokens

    done = ctx.store.done_keys("top_features")
    for prompt_set, prompts in prompt_sets:
        keys = [
            content_key(
                {
                    "sae": ctx.sae.label,
                    "study": study,
                    "what": "top_features",
                    "set": prompt_set,
                    "prompt": p,
                }
            )
            for p in prompts
        ]
        todo = [i for i, k in enumerate(keys) if k not in done]
        if not todo:
            continue
        records = []
        batch = [prompts[i] for i in todo]
        for start, tokens in corpus_batches(ctx.model, batch, ctx.batch_size or 32):
            with torch.no_grad():
                _, cache = ctx.model.run_with_cache(tokens, names_filter=ctx.sae.hook_name)
                acts = ctx.sae.encode(cache[ctx.sae.hook_name])
            acts = acts.masked_fill(~real_tokens(ctx.model, tokens)[..., None], float("-inf"))
            peak, where = acts.max(dim=1)  # [batch, d_sae]
            top, idx = torch.topk(peak, k=min(TOP_FEATURES, peak.shape[-1]), dim=-1)
            for r in range(tokens.shape[0]):
                i = todo[start + r]
                records.append(
                    {
                        "kind": "top_features",
                        "key": keys[i],
                        "sae": ctx.sae.label,
                        "study": study,
                        "prompt_set": prompt_set,
                        "prompt_index": i,
                        "prompt": prompts[i],
                        "features": [
                            {
                                "feature": int(f),
                                "activation": float(a),
                                "token": ctx.model.tokenizer.decode([int(tokens[r, where[r, f]])]),
                            }
                            for a, f in zip(top[r].tolist(), idx[r].tolist(), strict=True)
                            if a > 0
                        ],
                    }
                )
        ctx.store.append(records)


def record_feature(
    ctx: StudyContext,
    study: str,
    features: Sequence[int],
    label: str | None,
    method: str,
    candidates: Sequence[Candidate],
) -> None:
    """Store which feature(s) a study intervenes on, how they were found, and their statistics
    (max activation, firing frequency, quantiles, and the corpus they come from)."""
    key = content_key({"sae": ctx.sae.label, "study": study, "what": "feature"})
    if key in ctx.store.done_keys("feature"):
        return
    stats = ctx.stats.describe(features[0]) if ctx.stats is not None else {}
    ctx.store.append(
        [
            {
                "kind": "feature",
                "key": key,
                "sae": ctx.sae.label,
                "study": study,
                "feature": features[0],
                "features": list(features),
                "label": label,
                "method": method,
                "max_activation": stats.get("max_activation"),
                "max_activation_source": stats.get("source"),
                "frequency": stats.get("frequency"),
                "quantiles": stats.get("quantiles"),
                "stats_tokens": stats.get("n_tokens"),
                "candidates": [c.__dict__ for c in candidates[:5]],
            }
        ]
    )


def generate_items(
    ctx: StudyContext,
    items: Sequence[WorkItem],
    target: ClampTarget,
    values: Callable[[WorkItem], tuple[float, ...] | None],
    extra: Callable[[WorkItem], dict[str, Any]],
    label: str = "",
) -> None:
    """Generate every item not yet in the store (one batched generation per chunk), storing each
    continuation with its token ids as soon as its chunk is done."""
    exp = ctx.experiment
    done = ctx.store.done_keys("generation")
    pending = [it for it in items if it.key not in done]
    stage = f"generate {ctx.sae.label} {items[0].study}{label}" if items else "generate"
    finished = len(items) - len(pending)
    ctx.progress(stage, finished, len(items))
    step = ctx.batch_size or len(pending) or 1
    for start in range(0, len(pending), step):
        chunk = pending[start : start + step]
        token_ids: list[list[int]] = []
        texts = generate_rows(
            ctx.model,
            [GenRow(it.prompt, values(it)) for it in chunk],
            target,
            max_new_tokens=exp.generation.max_new_tokens,
            greedy=exp.generation.greedy,
            temperature=exp.generation.temperature,
            seed=exp.seed,
            batch_size=ctx.batch_size,
            out_tokens=token_ids,
        )
        ctx.store.append(
            {
                "kind": "generation",
                "key": it.key,
                "sae": it.sae,
                "study": it.study,
                "condition": it.condition,
                "prompt_set": it.prompt_set,
                "level": it.level,
                "prompt_index": it.prompt_index,
                "prompt": it.prompt,
                **extra(it),
                "continuation": text,
                "tokens": ids,
            }
            for it, text, ids in zip(chunk, texts, token_ids, strict=True)
        )
        finished += len(chunk)
        ctx.progress(stage, finished, len(items))


def record_next_token(
    ctx: StudyContext,
    study: str,
    condition: str,
    prompt_set: str,
    prompts: Sequence[str],
    target: ClampTarget,
    values: tuple[float, ...],
    identity: dict[str, Any],
    named_tokens: dict[str, int] | None = None,
    metric: MetricFn | None = None,
) -> None:
    """Next-token effects of one intervention on one prompt set: one record per prompt."""
    key_of = [
        content_key({**identity, "what": "next_token", "set": prompt_set, "prompt": p})
        for p in prompts
    ]
    done = ctx.store.done_keys("next_token")
    todo = [i for i, k in enumerate(key_of) if k not in done]
    if not todo:
        return
    effects = next_token_effects(
        ctx.model, [prompts[i] for i in todo], target, values, named_tokens, metric
    )
    full = set_condition(prompt_set, condition)
    ctx.store.append(
        {
            "kind": "next_token",
            "key": key_of[i],
            "sae": ctx.sae.label,
            "study": study,
            "condition": full,
            "prompt_set": prompt_set,
            "prompt_index": i,
            "prompt": prompts[i],
            **eff,
        }
        for i, eff in zip(todo, effects, strict=True)
    )


def measure_generations(ctx: StudyContext, items: Sequence[WorkItem], concept: str | None) -> None:
    """Perplexity and topic drift of every generated continuation (one ``measure`` record each).

    ``nll``: mean negative log-likelihood per token of the continuation under the unintervened
    model. ``drift``: 1 − cosine similarity between the sentence embeddings of the continuation
    and of the baseline (unintervened) continuation of the same prompt. ``concept_sim``: cosine
    similarity to the concept's description; ``concept_gain``: that minus the baseline's.
    """
    from harness.engine.embedding import get_embedder

    embedder = get_embedder()
    gens = ctx.store.done_keys("generation")
    done = ctx.store.done_keys("measure")
    mine = [gens[it.key] for it in items if it.key in gens]
    key_of = {g["key"]: content_key({"of": g["key"], "embedder": embedder.name}) for g in mine}
    todo = [g for g in mine if key_of[g["key"]] not in done]
    if not todo:
        return
    base = {
        (g["prompt_set"], g["prompt_index"]): g
        for g in mine
        if split_condition(g["condition"])[1] == BASELINE
    }
    stage = f"measure {ctx.sae.label} {items[0].study}"
    ctx.progress(stage, 0, len(todo))
    nll = continuation_nll(
        ctx.model,
        [g["prompt"] for g in todo],
        [g["tokens"] for g in todo],
        batch_size=ctx.batch_size or 32,
    )
    baselines = [base.get((g["prompt_set"], g["prompt_index"])) for g in todo]
    texts = [g["continuation"] for g in todo] + [
        b["continuation"] if b is not None else "" for b in baselines
    ]
    emb = embedder.embed(texts + ([concept] if concept else []))
    n = len(todo)
    own, ref = emb[:n], emb[n : 2 * n]
    concept_vec = emb[2 * n] if concept else None
    records = []
    for i, g in enumerate(todo):
        has_base = baselines[i] is not None
        drift = max(0.0, float(1.0 - np.dot(own[i], ref[i]))) if has_base else None
        sim = float(np.dot(own[i], concept_vec)) if concept_vec is not None else None
        base_sim = (
            float(np.dot(ref[i], concept_vec)) if concept_vec is not None and has_base else None
        )
        records.append(
            {
                "kind": "measure",
                "key": key_of[g["key"]],
                "of": g["key"],
                "sae": g["sae"],
                "study": g["study"],
                "condition": g["condition"],
                "prompt_set": g["prompt_set"],
                "prompt_index": g["prompt_index"],
                "embedder": embedder.name,
                "nll": nll[i][0],
                "n_tokens": nll[i][1],
                "drift": drift,
                "concept_sim": sim,
                "concept_gain": None if sim is None or base_sim is None else sim - base_sim,
            }
        )
    ctx.store.append(records)
    ctx.progress(stage, len(todo), len(todo))


def judge_items(ctx: StudyContext, items: Sequence[WorkItem]) -> None:
    """Judge the items' continuations with every rubric of the run (cached ones are free); in a
    remote worker (``ctx.judging`` False) nothing: the driver judges afterwards."""
    if not ctx.judging:
        return
    for judge in ctx.judges:
        judge_generations(
            ctx.store,
            ctx.experiment,
            judge,
            ctx.batch_size or 256,
            ctx.progress,
            keys=[it.key for it in items],
            use_batches=ctx.judge_batch,
        )
