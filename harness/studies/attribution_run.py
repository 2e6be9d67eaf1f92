"""Running attribution vs ablation (the engine side of :mod:`harness.studies.attribution`).

Attribution is one forward and one backward pass: the SAE's feature activations ``f`` are made a
leaf at the hook, the activation is rebuilt as ``decode(f) + error`` with the reconstruction error
held fixed (so the model's output is unchanged), and ``attribution = ∂metric/∂f × (0 − f)``, the
linear estimate of what zeroing each feature would do. True ablations then zero the top-k
features one at a time (error term kept) and measure the exact change. Agreement: Spearman and
Pearson with bootstrap CIs over prompts, sign agreement and top-5 overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from transformer_lens import HookedTransformer

from harness.analysis.stats import agreement
from harness.engine.backend import LoadedSAE
from harness.engine.tokens import real_tokens, single_token_id
from harness.spec.refs import LogitDiff, prompt_list
from harness.studies.attribution import Attribution
from harness.studies.contract import StudyContext
from harness.studies.items import content_key

__all__ = ["ablate", "attribute", "feature_gradient", "metric_fn", "run"]

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, tokens) -> [batch]


def metric_fn(model: HookedTransformer, metric: Any, field: str) -> Metric:
    """The study's metric as a function of logits: one value per prompt."""
    if isinstance(metric, LogitDiff):
        ids = [
            single_token_id(model, word, f"{field}.metric.{name}")
            for word, name in ((metric.positive, "positive"), (metric.negative, "negative"))
        ]
        pos, neg = ids
        return lambda logits, tokens: logits[:, -1, pos] - logits[:, -1, neg]
    cont = model.to_tokens(metric.continuation, prepend_bos=False)[0]

    def logprob(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        n = len(cont)
        lp = torch.log_softmax(logits[:, -n - 1 : -1, :].float(), dim=-1)
        return lp.gather(-1, tokens[:, -n:, None])[..., 0].sum(-1)

    return logprob


def feature_gradient(
    model: HookedTransformer, sae: LoadedSAE, tokens: torch.Tensor, metric: Metric
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(metric [batch], feature activations, ∂metric/∂f) — both ``[batch, pos, d_sae]`` — with
    the SAE error term held fixed, so the model's output is unchanged."""
    store: dict[str, torch.Tensor] = {}

    def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
        with torch.no_grad():
            f0 = sae.encode(act)
            error = act.float() - sae.decode(f0)
        f = f0.clone().requires_grad_(True)
        store["f"] = f
        return (sae.decode(f) + error).to(act.dtype)

    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(sae.hook_name, hook)])
        values = metric(logits, tokens)
        (grad,) = torch.autograd.grad(values.sum(), store["f"])
    return values.detach(), store["f"].detach(), grad


def attribute(
    model: HookedTransformer,
    sae: LoadedSAE,
    tokens: torch.Tensor,
    metric: Metric,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(metric [batch], feature activations [batch, pos, d_sae], attribution [batch, pos, d_sae]).

    ``mask`` [batch, pos] marks the positions whose features are attributed (not BOS or padding).
    """
    values, f, grad = feature_gradient(model, sae, tokens, metric)
    attribution = grad * (0 - f) * mask[..., None]
    return values, f, attribution


@torch.no_grad()
def ablate(
    model: HookedTransformer,
    sae: LoadedSAE,
    tokens: torch.Tensor,
    metric: Metric,
    feature: int,
    mask: torch.Tensor,
) -> torch.Tensor:
    """The metric with ``feature`` zeroed at the masked positions (error term kept)."""
    from harness.engine.interventions import clamp_features

    values = torch.zeros(tokens.shape[0], 1)

    def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
        return clamp_features(sae.sae, act, torch.tensor([feature]), values, mask)

    return metric(model.run_with_hooks(tokens, fwd_hooks=[(sae.hook_name, hook)]), tokens)


@torch.no_grad()
def f_acts(
    model: HookedTransformer, sae: LoadedSAE, tokens: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Each feature's mean activation over the prompts' real tokens ``[d_sae]``."""
    _, cache = model.run_with_cache(tokens, names_filter=sae.hook_name)
    acts = sae.encode(cache[sae.hook_name]).float() * mask[..., None]
    return acts.sum((0, 1)) / mask.sum().clamp(min=1)


def independent_sample(
    d_sae: int, size: int, mean_acts: torch.Tensor, seed: int
) -> tuple[list[int], str]:
    """Features chosen without looking at attribution: all of them when ``d_sae <= size``, else
    the ``size // 4`` most active on the prompts plus a seeded random draw of the rest."""
    if d_sae <= size:
        return list(range(d_sae)), f"all {d_sae} features"
    n_top = size // 4
    top = torch.topk(mean_acts, n_top).indices.tolist()
    rest = sorted(set(range(d_sae)) - set(top))
    rng = np.random.default_rng([seed, 19])
    drawn = rng.choice(len(rest), size=size - n_top, replace=False)
    chosen = sorted(top + [rest[int(j)] for j in drawn])
    return chosen, f"{n_top} most active features + {size - n_top} drawn at random (seeded)"


def run(ctx: StudyContext, study: Attribution, field: str) -> None:
    """Attribute, ablate the top-k features, measure agreement; one record per SAE × study."""
    model, sae, store, seed = ctx.model, ctx.sae, ctx.store, ctx.experiment.seed
    key = content_key({"sae": sae.label, "study": study.name, "what": "attribution"})
    if key in store.done_keys("attribution"):
        return
    metric = metric_fn(model, study.metric, field)
    prompts = list(prompt_list(study.prompts))
    tokens = model.to_tokens(prompts, padding_side="left")
    mask = real_tokens(model, tokens)
    base, _, attribution = attribute(model, sae, tokens, metric, mask)
    per_prompt = attribution.sum(1)  # [prompts, d_sae], summed over positions
    # per position: the prompts are left-padded, so column -j is every prompt's j-th-last token
    by_position = []
    for back in range(1, min(4, tokens.shape[1])):
        mean = attribution[:, -back, :].mean(0)
        idx = torch.topk(mean.abs(), 5).indices.tolist()
        by_position.append({"position": -back, "features": [[i, float(mean[i])] for i in idx]})
    k = min(study.top_k, per_prompt.shape[1])
    top = torch.topk(per_prompt.mean(0).abs(), k).indices.tolist()
    ablation = torch.stack([ablate(model, sae, tokens, metric, i, mask) - base for i in top], 1)
    attr_top = per_prompt[:, top].cpu().numpy()
    abl_top = ablation.cpu().numpy()
    sample, how = independent_sample(
        per_prompt.shape[1], study.sample, f_acts(model, sae, tokens, mask), seed
    )
    done = dict(zip(top, ablation.T, strict=True))
    abl_sample = torch.stack(
        [
            done[i] if i in done else ablate(model, sae, tokens, metric, i, mask) - base
            for i in sample
        ],
        1,
    )
    estimates = agreement(attr_top, abl_top, np.random.default_rng(seed))
    store.append(
        [
            {
                "kind": "attribution",
                "key": key,
                "sae": sae.label,
                "study": study.name,
                "metric_baseline": float(base.mean()),
                "n_prompts": len(prompts),
                "features": [
                    {
                        "feature": f,
                        "attribution": float(attr_top[:, j].mean()),
                        "ablation": float(abl_top[:, j].mean()),
                    }
                    for j, f in enumerate(top)
                ],
                "agreement": {k: asdict(e) for k, e in estimates.items()},
                # per prompt and feature: every statistic above can be recomputed from these
                "per_prompt": {"attribution": attr_top.tolist(), "ablation": abl_top.tolist()},
                "sample": {
                    "features": sample,
                    "how": how,
                    "attribution": per_prompt[:, sample].cpu().numpy().tolist(),
                    "ablation": abl_sample.cpu().numpy().tolist(),
                },
                "by_position": by_position,
            }
        ]
    )
