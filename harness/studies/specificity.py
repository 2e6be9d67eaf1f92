"""Finding features and measuring how specific they are (Templeton et al. 2024).

- Contrastive search: rank features by mean activation difference between positive and negative
  prompts (bootstrap CI over prompts), with max-activating corpus examples and, for SAELens
  releases that have one, a Neuronpedia link.
- Specificity: sample contexts where the feature fires, in bins of activation (fractions of its
  max, plus a bin of contexts where it does not fire), judge each on the 0–3 specificity rubric
  against the feature's description, and report the score distribution per bin.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from transformer_lens import HookedTransformer

from harness.backend import LoadedSAE
from harness.features import contrastive_candidates, prompt_activations, resolve_feature
from harness.judge.anthropic_judge import AnthropicJudge
from harness.judge.base import Judge, JudgeRequest
from harness.metrics.stats import bootstrap_mean
from harness.plan import content_key
from harness.scoring import judgement_record
from harness.spec import ContrastiveSearch, FeatureByContrast, Specificity, prompt_list
from harness.store import RunStore
from harness.tokens import corpus_batches

__all__ = [
    "INACTIVE",
    "Context",
    "feature_contexts",
    "max_activating_examples",
    "run_contrast",
    "run_specificity",
]

INACTIVE = "inactive"


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
                lo, hi = max(1, pos - window), pos + window + 1
                text = " ".join([*words[lo:pos], f"<<{words[pos]}>>", *words[pos + 1 : hi]])
                text = text.replace(f" {tok.pad_token}", "")
                out.append(Context(start + row, pos, float(acts[row, pos]), text))
    return out


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


def _description(
    study: Specificity, sae: LoadedSAE, contexts: list[Context], judge: Judge, store: RunStore
) -> str:
    """The spec's description or label; else an auto-interpretation, made once and stored."""
    if study.description or study.feature.label:
        return str(study.description or study.feature.label)
    key = content_key({"sae": sae.label, "study": study.name, "what": "description"})
    stored = store.done_keys("description").get(key)
    if stored is not None:
        return str(stored["text"])
    examples = [c.text for c in max_activating_examples(contexts, 10)]
    text, source = None, "offline: the most frequent max-activating tokens"
    if isinstance(judge, AnthropicJudge):
        text, source = judge.describe(examples), judge.name
    if text is None:
        text = _describe(contexts)
    store.append(
        [
            {
                "kind": "description",
                "key": key,
                "sae": sae.label,
                "study": study.name,
                "text": text,
                "source": source,
                "examples": examples,
            }
        ]
    )
    return text


def run_specificity(
    model: HookedTransformer,
    sae: LoadedSAE,
    study: Specificity,
    field: str,
    docs: list[str],
    judge: Judge,
    store: RunStore,
    seed: int,
    all_saes: dict[str, LoadedSAE],
) -> None:
    """Sample contexts per activation bin, judge them, append everything to the store."""
    feature, _ = resolve_feature(model, sae, study.feature, f"{field}.feature", all_saes)
    contexts = feature_contexts(model, sae, docs, feature, study.context_window)
    max_act = max((c.activation for c in contexts), default=0.0)
    description = _description(study, sae, contexts, judge, store)
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
    judged = {
        r["of"]
        for r in store.records("judgement")
        if r["judge"] == judge.name and r["rubric"] == judge.rubric.ident
    }
    todo = [r for r in records if r["key"] not in judged]
    verdicts = judge.judge(
        [
            JudgeRequest(text=r["text"], concept=description, keywords=study.feature.keywords)
            for r in todo
        ]
    )
    store.append(judgement_record(r, v) for r, v in zip(todo, verdicts, strict=True))


@torch.no_grad()
def run_contrast(
    model: HookedTransformer,
    sae: LoadedSAE,
    study: ContrastiveSearch,
    docs: list[str],
    store: RunStore,
    seed: int,
    neuronpedia: str | None,
) -> None:
    """Rank features by contrast; keep scores with bootstrap CIs and max-activating examples."""
    key = content_key({"sae": sae.label, "study": study.name, "what": "candidates"})
    if key in store.done_keys("candidates"):
        return
    ref = FeatureByContrast(
        positive=prompt_list(study.positive),
        negative=prompt_list(study.negative),
        position=study.position,
    )
    pos = prompt_activations(model, sae, ref.positive, ref.position).cpu().numpy()
    neg = prompt_activations(model, sae, ref.negative, ref.position).cpu().numpy()
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for rank, cand in enumerate(contrastive_candidates(model, sae, ref, top=study.top_k), 1):
        diffs = []
        for _ in range(1000):
            p = pos[rng.integers(0, len(pos), len(pos)), cand.index].mean()
            n = neg[rng.integers(0, len(neg), len(neg)), cand.index].mean()
            diffs.append(p - n)
        low, high = np.quantile(diffs, [0.025, 0.975])
        examples = []
        if rank <= 3:
            contexts = feature_contexts(model, sae, docs, cand.index, window=6)
            examples = [
                {"text": c.text, "activation": c.activation}
                for c in max_activating_examples(contexts, 5)
            ]
        rows.append(
            {
                "rank": rank,
                "feature": cand.index,
                "score": cand.score,
                "ci_low": float(low),
                "ci_high": float(high),
                "n": len(pos) + len(neg),
                "mean_positive": cand.mean_positive,
                "mean_negative": cand.mean_negative,
                "examples": examples,
                "neuronpedia": f"https://www.neuronpedia.org/{neuronpedia}/{cand.index}"
                if neuronpedia
                else None,
            }
        )
    store.append(
        [
            {
                "kind": "candidates",
                "key": key,
                "sae": sae.label,
                "study": study.name,
                "candidates": rows,
            }
        ]
    )


def specificity_rows(store: RunStore, seed: int) -> list[dict[str, Any]]:
    """Summary rows per (sae, study, bin): mean specificity score with CI, and the share of 3s."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str, str], list[int]] = {}
    for c in store.records("context"):
        groups.setdefault((c["sae"], c["study"], c["condition"]), [])
    for j in store.judgements("*"):
        group = (j["sae"], j["study"], j["condition"])
        if group in groups and j["rubric"].startswith("specificity@") and j["score"] is not None:
            groups[group].append(j["score"])
    rows = []
    for (sae, study, cond), scores in groups.items():
        for metric, data in (
            ("specificity_score", [float(s) for s in scores]),
            ("share_of_3s", [1.0 if s == 3 else 0.0 for s in scores]),
        ):
            est = bootstrap_mean(data, rng)
            rows.append(
                {
                    "sae": sae,
                    "study": study,
                    "condition": cond,
                    "metric": metric,
                    "value": est.value,
                    "ci_low": est.ci_low,
                    "ci_high": est.ci_high,
                    "n": est.n,
                }
            )
    return rows
