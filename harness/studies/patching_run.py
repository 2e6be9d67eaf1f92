"""Running activation patching (the engine side of :mod:`harness.studies.patching`)."""

from __future__ import annotations

from typing import Any

import torch

from harness.engine.features import resolve_feature
from harness.engine.interventions import clamp_features, feature_activations
from harness.errors import SpecError
from harness.spec.refs import prompt_list
from harness.studies.attribution_run import metric_fn
from harness.studies.contract import StudyContext
from harness.studies.items import content_key
from harness.studies.patching import ActivationPatching, patch_names

__all__ = ["check", "run"]


def _features(ctx: StudyContext, study: ActivationPatching, path: str) -> list[int]:
    return [
        resolve_feature(ctx.model, ctx.sae, ref, f"{path}.features.{j}", ctx.all_saes)[0]
        for j, ref in enumerate(study.features)
    ]


def check(ctx: StudyContext, study: ActivationPatching, path: str) -> None:
    """Before the first generation: every prompt is long enough for the patched positions."""
    need = study.positions if study.what == "residual" else 1
    for name in ("sources", "targets"):
        for j, prompt in enumerate(prompt_list(getattr(study, name))):
            n = int(ctx.model.to_tokens(prompt, prepend_bos=False).shape[-1])
            if n < need:
                raise SpecError(
                    f"{name}[{j}] has {n} tokens after BOS, fewer than the {need} positions "
                    "patched; use fewer positions or longer prompts",
                    field=f"{path}.positions",
                )
    _features(ctx, study, path)


@torch.no_grad()
def run(ctx: StudyContext, study: ActivationPatching, field: str) -> None:
    """Patch every pair (one record per pair and patch; stored pairs are not redone)."""
    model, sae, store = ctx.model, ctx.sae, ctx.store
    metric = metric_fn(model, study.metric, field)
    features = _features(ctx, study, field)
    names = patch_names(study, features)
    done = store.done_keys("patch")
    hook = sae.hook_name
    identity = {
        "study": study.name,
        "sae": sae.label,
        "model": ctx.experiment.model.model_dump(mode="json", exclude={"device"}),
        "metric": study.metric.model_dump(mode="json"),
        "what": study.what,
        "features": features,
    }
    pairs = list(zip(prompt_list(study.sources), prompt_list(study.targets), strict=True))
    stage = f"patch {sae.label} {study.name}"
    ctx.progress(stage, 0, len(pairs))
    for i, (source, target) in enumerate(pairs):
        keys = {
            name: content_key({**identity, "source": source, "target": target, "patch": name})
            for name in names
        }
        if all(k in done for k in keys.values()):
            continue
        src = model.to_tokens(source)
        tgt = model.to_tokens(target)
        src_logits, cache = model.run_with_cache(src, names_filter=hook)
        src_act = cache[hook]
        m_src = float(metric(src_logits, src)[0])
        m_tgt = float(metric(model(tgt), tgt)[0])
        records = []
        for name in names:
            patched = float(
                metric(_patched_logits(ctx, study, name, features, src_act, tgt), tgt)[0]
            )
            gap = m_src - m_tgt
            restored = (patched - m_tgt) / gap if abs(gap) >= study.min_difference else None
            records.append(
                {
                    "kind": "patch",
                    "key": keys[name],
                    "sae": sae.label,
                    "study": study.name,
                    "condition": name,
                    "prompt_index": i,
                    "metric_source": m_src,
                    "metric_target": m_tgt,
                    "metric_patched": patched,
                    "restored": restored,
                }
            )
        store.append(records)
        ctx.progress(stage, i + 1, len(pairs))
    if study.rank_features:
        from harness.studies.patching_rank_run import rank_features

        rank_features(ctx, study, field)


def _patched_logits(
    ctx: StudyContext,
    study: ActivationPatching,
    name: str,
    features: list[int],
    src_act: torch.Tensor,
    tgt: torch.Tensor,
) -> torch.Tensor:
    """The target's logits with one patch applied at the hook point."""
    model, sae = ctx.model, ctx.sae
    if name.startswith("residual@"):
        back = study.positions if name.startswith("residual@last") else int(name.split("-")[1])
        cols = range(1, back + 1) if name.startswith("residual@last") else [back]

        def residual(act: torch.Tensor, hook: Any) -> torch.Tensor:
            out = act.clone()
            for k in cols:
                out[:, -k] = src_act[:, -k]
            return out

        logits: torch.Tensor = model.run_with_hooks(tgt, fwd_hooks=[(sae.hook_name, residual)])
        return logits
    chosen = features if name == "features" else [int(name.split()[1])]
    feats = torch.tensor(chosen, device=src_act.device)
    values = feature_activations(sae.sae, src_act, feats)[:, -1]  # [1, n]: the source's last token

    def patch_features(act: torch.Tensor, hook: Any) -> torch.Tensor:
        apply = torch.zeros(act.shape[:2], dtype=torch.bool, device=act.device)
        apply[:, -1] = True
        return clamp_features(sae.sae, act, feats, values, apply)

    patched: torch.Tensor = model.run_with_hooks(tgt, fwd_hooks=[(sae.hook_name, patch_features)])
    return patched
