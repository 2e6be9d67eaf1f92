"""Ranking features by how much of a patched difference each carries, three ways (the engine side
of a patching study's ``rank_features``).

For every pair and every feature of a sample chosen without looking at any of the methods (all
of a small SAE's features; else the most active quarter on the targets plus a seeded random
draw), at the target's last position, error term kept:

- ``patching``: the metric's change when the feature alone takes the source's value;
- ``ablation``: the metric's change when the feature is zeroed;
- ``attribution``: the linear estimate of that zeroing, ∂metric/∂f × (0 − f);
- ``attribution_patching``: the linear estimate of the patch, ∂metric/∂f × (f_source − f).

One batched forward per pair and exact method (a row per feature: ``Δ = (v − f) · W_dec[f]``
added at the last position), one backward per pair for both estimates.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.spec.refs import prompt_list
from harness.studies.attribution_run import feature_gradient, independent_sample, metric_fn
from harness.studies.contract import StudyContext
from harness.studies.items import content_key

__all__ = ["METHODS", "rank_features"]

METHODS = ("attribution", "ablation", "patching", "attribution_patching")


@torch.no_grad()
def _shifted(
    model: Any, hook: str, tokens: torch.Tensor, rows: torch.Tensor, metric: Any
) -> torch.Tensor:
    """The metric of ``tokens`` repeated once per row of ``rows`` ``[F, d_model]``, each row's
    shift added at the last position."""
    batch = tokens.expand(rows.shape[0], -1)

    def add(act: torch.Tensor, hook: Any) -> torch.Tensor:
        out = act.clone()
        out[:, -1] = (out[:, -1].float() + rows).to(act.dtype)
        return out

    out: torch.Tensor = metric(model.run_with_hooks(batch, fwd_hooks=[(hook, add)]), batch)
    return out.float()


def rank_features(ctx: StudyContext, study: Any, field: str) -> None:
    """Store one ``patch_ranking`` record per SAE × study (not redone when stored)."""
    model, sae, store = ctx.model, ctx.sae, ctx.store
    key = content_key({"sae": sae.label, "study": study.name, "what": "patch_ranking"})
    if key in store.done_keys("patch_ranking"):
        return
    metric = metric_fn(model, study.metric, field)
    pairs = list(zip(prompt_list(study.sources), prompt_list(study.targets), strict=True))
    w_dec = sae.sae.W_dec.detach().float()
    grads, f_src, f_tgt, base = [], [], [], []
    for source, target in pairs:
        src, tgt = model.to_tokens(source), model.to_tokens(target)
        with torch.no_grad():
            _, cache = model.run_with_cache(src, names_filter=sae.hook_name)
            f_src.append(sae.encode(cache[sae.hook_name])[0, -1].float())
        m, f, grad = feature_gradient(model, sae, tgt, metric)
        base.append(float(m[0]))
        f_tgt.append(f[0, -1].float())
        grads.append(grad[0, -1].float())
    mean_acts = torch.stack(f_tgt).mean(0)
    sample, how = independent_sample(
        w_dec.shape[0], study.rank_sample, mean_acts, ctx.experiment.seed
    )
    feats = torch.tensor(sample, device=w_dec.device)
    per: dict[str, list[list[float]]] = {m: [] for m in METHODS}
    stage = f"rank features {sae.label} {study.name}"
    for i, (_, target) in enumerate(pairs):
        tgt = model.to_tokens(target)
        now, src_v, g = f_tgt[i][feats], f_src[i][feats], grads[i][feats]
        patched = _shifted(model, sae.hook_name, tgt, (src_v - now)[:, None] * w_dec[feats], metric)
        zeroed = _shifted(model, sae.hook_name, tgt, (0 - now)[:, None] * w_dec[feats], metric)
        per["patching"].append((patched - base[i]).tolist())
        per["ablation"].append((zeroed - base[i]).tolist())
        per["attribution"].append((g * (0 - now)).tolist())
        per["attribution_patching"].append((g * (src_v - now)).tolist())
        ctx.progress(stage, i + 1, len(pairs))
    store.append(
        [
            {
                "kind": "patch_ranking",
                "key": key,
                "sae": sae.label,
                "study": study.name,
                "features": sample,
                "how": how,
                "per_pair": per,
            }
        ]
    )
