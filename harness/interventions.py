"""Feature interventions as pure tensor functions, plus a hook context manager (DESIGN §5).

The default clamp keeps the SAE's reconstruction error: setting feature ``i`` to ``v`` maps
``x ↦ x + (v − f_i(x)) · W_dec[i]``. For standard (ReLU) and JumpReLU SAEs without input
normalisation ``f_i`` needs only encoder column ``i``; other SAEs go through the full encode and
decode, which is exact for every architecture. The naive ``decode(encode(x))`` replacement, which
drops the error term, is available only by asking for it (``keep_error_term=False``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformer_lens import HookedTransformer
from transformer_lens.hook_points import HookPoint

__all__ = ["RowClamp", "clamp_features", "feature_activations", "installed_clamp"]

_FAST_ARCHS = {"standard", "jumprelu"}


def _fast_path(sae: Any) -> bool:
    return sae.cfg.architecture() in _FAST_ARCHS and sae.cfg.normalize_activations == "none"


def feature_activations(sae: Any, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Activations ``[..., n_features]`` of the selected features, computed in float32."""
    x32 = x.float()
    if _fast_path(sae):
        sae_in = x32 - sae.b_dec.float() if sae.cfg.apply_b_dec_to_input else x32
        pre = sae_in @ sae.W_enc[:, features].float() + sae.b_enc[features].float()
        if sae.cfg.architecture() == "jumprelu":
            return cast(torch.Tensor, pre * (pre > sae.threshold[features].float()))
        return torch.relu(cast(torch.Tensor, pre))
    return cast(torch.Tensor, sae.encode(x32.to(sae.dtype))[..., features]).float()


def clamp_features(
    sae: Any,
    x: torch.Tensor,
    features: torch.Tensor,
    values: torch.Tensor,
    apply: torch.Tensor,
    *,
    conditional: bool = False,
    keep_error_term: bool = True,
) -> torch.Tensor:
    """Return ``x`` with the selected features set to ``values`` where ``apply`` is true.

    Args:
        sae: a SAELens SAE.
        x: activations ``[batch, pos, d_in]``.
        features: feature indices ``[n_features]``.
        values: target values ``[batch, n_features]`` (one row of values per batch row).
        apply: ``[batch, pos]`` booleans: where to intervene (rows/positions left false are
            returned unchanged, bit for bit).
        conditional: only clamp where the feature is already active (> 0).
        keep_error_term: keep the SAE reconstruction error (default). False reproduces the older
            ``decode(encode(x))`` replacement with the clamp applied.
    """
    if not keep_error_term:
        return _replace_with_reconstruction(sae, x, features, values, apply, conditional)
    acts = feature_activations(sae, x, features)  # [b, p, n]
    target = values[:, None, :].to(acts.dtype).expand_as(acts)
    mask = apply[..., None].expand_as(acts)
    if conditional:
        mask = mask & (acts > 0)
    delta = torch.where(mask, target - acts, torch.zeros_like(acts))
    if _fast_path(sae):
        shift = delta @ sae.W_dec[features].float()
    else:
        base = torch.zeros(*x.shape[:-1], sae.cfg.d_sae, dtype=torch.float32, device=x.device)
        moved = base.clone()
        moved[..., features] = delta
        shift = sae.decode(moved.to(sae.dtype)).float() - sae.decode(base.to(sae.dtype)).float()
    out = x.float() + shift
    return torch.where(apply[..., None], out.to(x.dtype), x)


def _replace_with_reconstruction(
    sae: Any,
    x: torch.Tensor,
    features: torch.Tensor,
    values: torch.Tensor,
    apply: torch.Tensor,
    conditional: bool,
) -> torch.Tensor:
    acts = sae.encode(x.to(sae.dtype))
    sel = acts[..., features]
    target = values[:, None, :].to(sel.dtype).expand_as(sel)
    mask = apply[..., None].expand_as(sel)
    if conditional:
        mask = mask & (sel > 0)
    acts[..., features] = torch.where(mask, target, sel)
    recon = sae.decode(acts).to(x.dtype)
    return torch.where(apply[..., None], recon, x)


@dataclass(frozen=True)
class RowClamp:
    """A batch's clamp: per-row target values; rows with ``active=False`` are left untouched.

    ``prompt_mask`` marks the prompt positions to intervene on (false at BOS and padding);
    every decode step after the prompt is intervened on for the active rows.
    """

    features: torch.Tensor  # [n_features] long
    values: torch.Tensor  # [batch, n_features]
    active: torch.Tensor  # [batch] bool
    prompt_mask: torch.Tensor  # [batch, prompt_len] bool
    conditional: bool = False
    keep_error_term: bool = True


@contextmanager
def installed_clamp(
    model: HookedTransformer, hook_name: str, sae: Any, clamp: RowClamp
) -> Iterator[list[int]]:
    """Install ``clamp`` at ``hook_name`` for the duration of the block; always removed.

    Yields a list that counts the forward calls the hook saw (prompt pass + decode steps), so
    callers and tests can check the intervention fired on every step.
    """
    calls: list[int] = []
    prompt_len = clamp.prompt_mask.shape[1]

    def hook(act: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        first = not calls
        calls.append(act.shape[1])
        if first and act.shape[1] == prompt_len:
            where = clamp.prompt_mask.to(act.device)
        else:
            where = torch.ones(act.shape[:2], dtype=torch.bool, device=act.device)
        where = where & clamp.active.to(act.device)[:, None]
        if not bool(where.any()):
            return act
        return clamp_features(
            sae,
            act,
            clamp.features.to(act.device),
            clamp.values.to(act.device),
            where,
            conditional=clamp.conditional,
            keep_error_term=clamp.keep_error_term,
        )

    try:
        with model.hooks(fwd_hooks=[(hook_name, hook)]):
            yield calls
    finally:
        model.reset_hooks(including_permanent=False)
