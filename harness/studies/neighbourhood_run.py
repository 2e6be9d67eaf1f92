"""Running a feature-neighbourhood study (the engine side of :mod:`harness.studies.neighbourhood`).

One pass over the corpus per SAE encodes every token once and keeps, for the studied feature and
its neighbours, the firing count, the max activation and the top contexts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch

from harness.engine.features import resolve_feature
from harness.engine.tokens import corpus_batches, real_tokens
from harness.spec.refs import ToyModel, prompt_list
from harness.studies.contract import StudyContext
from harness.studies.items import content_key
from harness.studies.neighbourhood import FeatureNeighbourhood
from harness.studies.specificity_run import window_text

__all__ = ["BACKGROUND", "context_topic", "nearest", "run", "split_children", "topic_of"]


def nearest(w_from: torch.Tensor, row: int, w_to: torch.Tensor, k: int, skip: int | None) -> Any:
    """The ``k`` rows of ``w_to`` with the highest cosine to ``w_from[row]`` (``skip``: a row
    of ``w_to`` left out, the feature itself when both are the same SAE)."""
    a = w_from[row].float()
    b = w_to.float()
    cos = (b @ a) / (b.norm(dim=1) * a.norm()).clamp(min=1e-12)
    if skip is not None:
        cos[skip] = -2.0
    top = torch.topk(cos, min(k, b.shape[0] - (skip is not None)))
    return list(zip(top.indices.tolist(), top.values.tolist(), strict=True))


@torch.no_grad()
def _scan(
    ctx: StudyContext, sae: Any, features: list[int], docs: list[str], window: int, k: int
) -> tuple[int, dict[int, dict[str, Any]]]:
    """Per feature: firing count, max activation, the top-``k`` contexts (by activation)."""
    model = ctx.model
    tok = model.tokenizer
    feats = torch.tensor(features)
    out: dict[int, dict[str, Any]] = {f: {"fires": 0, "max": 0.0, "top": []} for f in features}
    n_tokens = 0
    for _, tokens in corpus_batches(model, docs):
        _, cache = model.run_with_cache(tokens, names_filter=sae.hook_name)
        acts = sae.encode(cache[sae.hook_name])[..., feats.to(tokens.device)].float().cpu()
        real = real_tokens(model, tokens).cpu()
        acts = acts * real[..., None]
        n_tokens += int(real.sum())
        for j, f in enumerate(features):
            col = acts[..., j]
            out[f]["fires"] += int((col > 0).sum())
            out[f]["max"] = max(out[f]["max"], float(col.max()))
            flat = torch.topk(col.flatten(), min(k, col.numel()))
            for value, where in zip(flat.values.tolist(), flat.indices.tolist(), strict=True):
                if value <= 0:
                    continue
                row, pos = divmod(where, col.shape[1])
                ids = tokens[row].tolist()
                words = tok.convert_ids_to_tokens(ids)
                text = window_text(words, pos, window, tok.pad_token)
                out[f]["top"].append((value, text, words[pos]))
            out[f]["top"] = sorted(out[f]["top"], key=lambda t: -t[0])[:k]
    return n_tokens, out


def split_children(
    w_own: torch.Tensor, feature: int, w_wide: torch.Tensor, threshold: float
) -> list[tuple[int, float]]:
    """Features of a wider SAE whose decoder row is nearest to ``feature``'s among the
    narrower SAE's rows, with cosine ≥ ``threshold``, closest first."""
    a = w_own.float() / w_own.float().norm(dim=1, keepdim=True).clamp(min=1e-12)
    b = w_wide.float() / w_wide.float().norm(dim=1, keepdim=True).clamp(min=1e-12)
    best = (b @ a.T).max(dim=1)
    kids = [
        (j, float(v))
        for j, (v, i) in enumerate(zip(best.values.tolist(), best.indices.tolist(), strict=True))
        if i == feature and v >= threshold
    ]
    return sorted(kids, key=lambda kv: -kv[1])


def topic_of(words: list[str], lexicon: Mapping[str, frozenset[str]] | None) -> str | None:
    """The toy topic most of ``words`` belong to (None: no lexicon, or no word of one topic)."""
    if not lexicon:
        return None
    votes = Counter(t for w in words for t, ws in lexicon.items() if w in ws)
    return votes.most_common(1)[0][0] if votes else None


def context_topic(texts: list[str], lexicon: Mapping[str, frozenset[str]] | None) -> str | None:
    """The toy topic of a feature's max-activating contexts: each context votes for the topic
    most of its words belong to, and the most votes win (ties: the first context's). A feature
    that fires on "the" in bridge sentences is a bridge feature, whatever the token."""
    if not lexicon:
        return None
    from harness.judge.offline import content_words

    votes = [
        topic_of(content_words(t.replace("<<", " ").replace(">>", " ")), lexicon) for t in texts
    ]
    counted = Counter(v for v in votes if v is not None)
    return counted.most_common(1)[0][0] if counted else None


BACKGROUND = 256  # features per SAE whose topics give the base rate (all, when the SAE is small)


def _background(
    ctx: StudyContext, sae: Any, docs: list[str], study: FeatureNeighbourhood, lexicon: Any
) -> dict[str, Any]:
    """The topics of every feature of a small SAE (or a seeded sample of ``BACKGROUND``): how
    common each topic is among features at all, the base rate a neighbourhood is tested on."""
    d_sae = int(sae.sae.W_dec.shape[0])
    if d_sae <= 4 * BACKGROUND:
        feats = list(range(d_sae))
    else:
        g = torch.Generator().manual_seed(ctx.experiment.seed)
        feats = sorted(torch.randperm(d_sae, generator=g)[:BACKGROUND].tolist())
    _, scan = _scan(ctx, sae, feats, docs, study.context_window, study.examples)
    topics = Counter(
        context_topic([t for _, t, _ in scan[f]["top"]], lexicon) or "none" for f in feats
    )
    return {"features": len(feats), "of": d_sae, "topics": dict(sorted(topics.items()))}


def run(ctx: StudyContext, study: FeatureNeighbourhood, field: str) -> None:
    """Nearest decoder directions within ``ctx.sae`` and in every other SAE; one record."""
    key = content_key({"sae": ctx.sae.label, "study": study.name, "what": "neighbourhood"})
    if key in ctx.store.done_keys("neighbourhood"):
        return
    feature, _ = resolve_feature(
        ctx.model, ctx.sae, study.feature, f"{field}.feature", ctx.all_saes
    )
    docs = list(prompt_list(study.corpus)) if study.corpus else ctx.documents
    lexicon = None
    if isinstance(ctx.experiment.model, ToyModel):
        from harness.toy.lexicon import topic_lexicon

        lexicon = topic_lexicon()
    w_own = ctx.sae.sae.W_dec.detach()
    chosen: list[tuple[Any, int, float | None]] = [(ctx.sae, feature, None)]
    chosen += [
        (ctx.sae, f, c) for f, c in nearest(w_own, feature, w_own, study.neighbours, feature)
    ]
    for label, other in ctx.all_saes.items():
        w = other.sae.W_dec.detach()
        if label == ctx.sae.label or w.shape[1] != w_own.shape[1]:
            continue
        chosen += [(other, f, c) for f, c in nearest(w_own, feature, w, study.neighbours, None)]
    children: dict[str, list[tuple[int, float]]] = {}
    for label, other in ctx.all_saes.items():
        w = other.sae.W_dec.detach()
        if w.shape[0] > w_own.shape[0] and w.shape[1] == w_own.shape[1]:
            children[label] = split_children(w_own, feature, w, study.split_cosine)
    by_sae: dict[str, list[int]] = {}
    for sae, f, _ in chosen:
        by_sae.setdefault(sae.label, []).append(f)
    for label, kids in children.items():
        by_sae.setdefault(label, []).extend(f for f, _ in kids)
    scans, n_tokens = {}, 0
    for label, feats in by_sae.items():
        n_tokens, scans[label] = _scan(
            ctx, ctx.all_saes[label], sorted(set(feats)), docs, study.context_window, study.examples
        )

    def entry(label: str, f: int, cos: float | None) -> dict[str, Any]:
        s = scans[label][f]
        fired = [w for _, _, w in s["top"]]
        common = [w for w, _ in Counter(fired).most_common(5)]
        return {
            "sae": label,
            "feature": f,
            "cosine": cos,
            "frequency": s["fires"] / max(n_tokens, 1),
            "max_activation": s["max"],
            "description": "fires on: " + ", ".join(common) if common else "never fires",
            "top_tokens": common,
            "topic": context_topic([t for _, t, _ in s["top"]], lexicon),
            "examples": [{"activation": v, "text": t} for v, t, _ in s["top"]],
        }

    neighbours = [entry(sae.label, f, cos) for sae, f, cos in chosen]
    background = (
        {label: _background(ctx, ctx.all_saes[label], docs, study, lexicon) for label in by_sae}
        if lexicon
        else {}
    )
    splits = {label: [entry(label, f, c) for f, c in kids] for label, kids in children.items()}
    ctx.store.append(
        [
            {
                "kind": "neighbourhood",
                "key": key,
                "sae": ctx.sae.label,
                "study": study.name,
                "feature": feature,
                "tokens": n_tokens,
                "neighbours": neighbours,
                "splits": splits,
                "background": background,
            }
        ]
    )
