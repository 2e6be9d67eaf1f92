"""Running a specificity study (the engine side of :mod:`harness.studies.specificity`).

Sample contexts where the feature fires, in bins of activation (fractions of its max, plus a bin
of contexts where it does not fire), judge each on the 0–3 specificity rubric against the
feature's description. Also: the corpus contexts of a feature and its max-activating examples,
which contrastive search reuses.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
from transformer_lens import HookedTransformer

from harness.engine.backend import LoadedSAE
from harness.engine.features import resolve_feature
from harness.engine.tokens import corpus_batches
from harness.judge.base import JudgeRequest
from harness.judge.service import describe_with, judge_items
from harness.spec.refs import prompt_list
from harness.studies.contract import StudyContext
from harness.studies.items import content_key
from harness.studies.specificity import INACTIVE, RUBRIC, Specificity

__all__ = [
    "Context",
    "feature_contexts",
    "judge",
    "max_activating_examples",
    "run",
    "window_text",
]


@dataclass(frozen=True)
class Context:
    """One token position of the corpus with the feature's activation there."""

    doc: int
    position: int
    activation: float
    text: str  # the window around the token, the token itself as <<token>>


@torch.no_grad()
def feature_contexts(
    model: HookedTransformer,
    sae: LoadedSAE,
    docs: list[str],
    feature: int,
    window: int,
    batch_size: int = 32,
) -> list[Context]:
    """Every non-BOS, non-pad position of ``docs`` with the feature's activation and context."""
    tok = model.tokenizer
    assert tok is not None
    out: list[Context] = []
    for start, tokens in corpus_batches(model, docs, batch_size):
        _, cache = model.run_with_cache(tokens, names_filter=sae.hook_name)
        acts = sae.encode(cache[sae.hook_name])[..., feature].cpu()
        for row in range(tokens.shape[0]):
            ids = tokens[row].tolist()
            words = tok.convert_ids_to_tokens(ids)
            for pos in range(1, len(ids)):
                if ids[pos] == tok.pad_token_id:
                    break
                text = window_text(words, pos, window, tok.pad_token)
                out.append(Context(start + row, pos, float(acts[row, pos]), text))
    return out


def window_text(words: Sequence[str], pos: int, window: int, pad: str) -> str:
    """The ``window`` tokens either side of ``pos`` (BOS and padding left out), the token itself
    marked ``<<token>>``."""
    lo, hi = max(1, pos - window), pos + window + 1
    text = " ".join([*words[lo:pos], f"<<{words[pos]}>>", *words[pos + 1 : hi]])
    return text.replace(f" {pad}", "")


def max_activating_examples(contexts: list[Context], k: int = 5) -> list[Context]:
    """The ``k`` contexts with the highest activation (one per distinct context text)."""
    out: list[Context] = []
    seen: set[str] = set()
    for c in sorted(contexts, key=lambda c: -c.activation):
        if c.text not in seen:
            seen.add(c.text)
            out.append(c)
            if len(out) == k:
                break
    return out


def _bin_label(lo: float, hi: float) -> str:
    return f"{lo:.2f}–{hi:.2f}×max"


def _describe(contexts: list[Context]) -> str:
    """An offline description from the max-activating tokens (when the spec gives none)."""
    top = max_activating_examples(contexts, 20)
    counts: dict[str, int] = {}
    for c in top:
        word = c.text.split("<<", 1)[1].split(">>", 1)[0]
        counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=lambda w: -counts[w])[:5]
    return "fires on: " + ", ".join(words)


def _description(ctx: StudyContext, study: Specificity, contexts: list[Context]) -> str:
    """The spec's description or label; else an auto-interpretation, made once and stored."""
    if study.description or study.feature.label:
        return str(study.description or study.feature.label)
    key = content_key({"sae": ctx.sae.label, "study": study.name, "what": "description"})
    stored = ctx.store.done_keys("description").get(key)
    if stored is not None:
        return str(stored["text"])
    examples = [c.text for c in max_activating_examples(contexts, 10)]
    record: dict[str, Any] = {
        "kind": "description",
        "key": key,
        "sae": ctx.sae.label,
        "study": study.name,
        "text": _describe(contexts),
        "source": "offline: the most frequent max-activating tokens",
        "examples": examples,
    }
    if ctx.describe is not None:  # a remote worker: the driver's judge describes
        record = ctx.describe(RUBRIC, record, examples)
    else:
        record = describe_with(ctx.judge_for(RUBRIC), record, examples)
    ctx.store.append([record])
    return str(record["text"])


def run(ctx: StudyContext, study: Specificity, field: str) -> None:
    """Sample contexts per activation bin, judge them, append everything to the store."""
    model, sae, store = ctx.model, ctx.sae, ctx.store
    docs = list(prompt_list(study.corpus)) if study.corpus else ctx.documents
    seed = ctx.experiment.seed
    feature, _ = resolve_feature(model, sae, study.feature, f"{field}.feature", ctx.all_saes)
    contexts = feature_contexts(model, sae, docs, feature, study.context_window)
    max_act = max((c.activation for c in contexts), default=0.0)
    description = _description(ctx, study, contexts)
    edges = [*study.bins, 1.0 + 1e-9]
    rng = random.Random(f"{seed}-{sae.label}-{study.name}")
    chosen: list[tuple[str, Context]] = []
    if study.include_inactive:
        inactive = [c for c in contexts if c.activation <= 0]
        chosen += [(INACTIVE, c) for c in rng.sample(inactive, min(study.n_per_bin, len(inactive)))]
    for lo, hi in pairwise(edges):
        members = [
            c for c in contexts if c.activation > 0 and lo * max_act < c.activation <= hi * max_act
        ]
        picked = rng.sample(members, min(study.n_per_bin, len(members)))
        chosen += [(_bin_label(lo, min(hi, 1.0)), c) for c in picked]
    records: list[dict[str, Any]] = [
        {
            "kind": "context",
            "key": content_key(
                {
                    "sae": sae.label,
                    "study": study.name,
                    "feature": feature,
                    "doc": c.doc,
                    "pos": c.position,
                    "window": study.context_window,
                }
            ),
            "sae": sae.label,
            "study": study.name,
            "condition": label,
            "prompt_index": i,
            "feature": feature,
            "activation": c.activation,
            "max_activation": max_act,
            "text": c.text,
            "description": description,
        }
        for i, (label, c) in enumerate(chosen)
    ]
    done = store.done_keys("context")
    store.append(r for r in records if r["key"] not in done)
    _judge_contexts(ctx, study, records)


def judge(ctx: StudyContext, study: Specificity, path: str) -> None:
    """The driver's step: judge the stored contexts of the study on ``ctx.sae``."""
    records = [
        r
        for r in ctx.store.records("context")
        if r["sae"] == ctx.sae.label and r["study"] == study.name
    ]
    _judge_contexts(ctx, study, sorted(records, key=lambda r: r["prompt_index"]))


def _judge_contexts(ctx: StudyContext, study: Specificity, records: list[dict[str, Any]]) -> None:
    if not ctx.judging or not records:
        return
    keywords = study.feature.keywords
    judge_items(
        ctx.store,
        ctx.judge_for(RUBRIC),
        records,
        lambda r: JudgeRequest(text=r["text"], concept=r["description"], keywords=keywords),
        batch_size=256,
        progress=ctx.progress,
        use_batches=ctx.judge_batch,
    )
