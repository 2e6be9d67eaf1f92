"""Feature interventions as pure tensor functions, plus a hook context manager (DESIGN §5).

The default clamp keeps the SAE's reconstruction error: setting feature ``i`` to ``v`` maps
``x ↦ x + (v − f_i(x)) · W_dec[i]``. For standard (ReLU) and JumpReLU SAEs without input
normalisation ``f_i`` needs only encoder column ``i``; other SAEs (TopK, normalised inputs) go
through the full encode and decode, which is exact for every architecture. Additive steering maps
``x ↦ x + α · W_dec[i]``. The naive ``decode(encode(x))`` replacement, which drops the error term,
is available only by asking for it (``keep_error_term=False``).

All maths runs in float32 whatever the model's dtype; rows or positions an intervention does not
apply to come back bit for bit unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from transformer_lens import HookedTransformer
from transformer_lens.hook_points import HookPoint

__all__ = [
    "Direction",
    "RowIntervention",
    "clamp_features",
    "feature_activations",
    "installed_intervention",
    "steer_features",
]

_FAST_ARCHS = {"standard", "jumprelu"}  # one encoder column gives a feature's activation
_LINEAR_DECODERS = {"standard", "jumprelu", "topk"}


class Direction:
    """Fixed directions to add, shaped like an SAE's decoder (one row each): a steering control
    with no encoder, used with ``mode="add"`` only (e.g. a random direction of a feature's
    decoder norm)."""

    def __init__(self, rows: torch.Tensor) -> None:
        self.W_dec = rows.detach().float()


def _fast_path(sae: Any) -> bool:
    if isinstance(sae, Direction):
        return False
    return sae.cfg.architecture() in _FAST_ARCHS and sae.cfg.normalize_activations == "none"


def _linear_decoder(sae: Any) -> bool:
    """Whether ``decode`` is ``f @ W_dec + b_dec`` (so a move of some features shifts the output
    by their decoder rows alone, with no full-width decode): standard, JumpReLU and TopK SAEs
    without activation normalisation, reshaping or decoder-norm rescaling."""
    cfg = sae.cfg
    return (
        cfg.architecture() in _LINEAR_DECODERS
        and cfg.normalize_activations == "none"
        and getattr(cfg, "reshape_activations", "none") == "none"
        and not getattr(cfg, "rescale_acts_by_decoder_norm", False)
    )


def feature_activations(sae: Any, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Activations ``[..., n_features]`` of the selected features, computed in float32."""
    x32 = x.float()
    if _fast_path(sae):
        sae_in = x32 - sae.b_dec.float() if sae.cfg.apply_b_dec_to_input else x32
        pre = sae_in @ sae.W_enc[:, features].float() + sae.b_enc[features].float()
        acts = torch.relu(cast(torch.Tensor, pre))
        if sae.cfg.architecture() == "jumprelu":
            acts = acts * (pre > sae.threshold[features].float())
        return acts
    return cast(torch.Tensor, sae.encode(x32.to(sae.dtype))[..., features]).float()


def _decoded_shift(
    sae: Any, x: torch.Tensor, features: torch.Tensor, delta: torch.Tensor
) -> torch.Tensor:
    """How the SAE output moves when the selected features move by ``delta`` (float32)."""
    if isinstance(sae, Direction) or _linear_decoder(sae):
        return cast(torch.Tensor, delta @ sae.W_dec[features].float())
    base = torch.zeros(*x.shape[:-1], sae.cfg.d_sae, dtype=torch.float32, device=x.device)
    moved = base.clone()
    moved[..., features] = delta
    after = cast(torch.Tensor, sae.decode(moved.to(sae.dtype))).float()
    return after - cast(torch.Tensor, sae.decode(base.to(sae.dtype))).float()


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
        apply: ``[batch, pos]`` booleans: where to intervene.
        conditional: only clamp where the feature is already active (> 0).
        keep_error_term: keep the SAE reconstruction error (default). False reproduces the older
            ``decode(encode(x))`` replacement with the clamp applied.
    """
    if not keep_error_term:
        return _replace_with_reconstruction(sae, x, features, values, apply, conditional)
    acts = feature_activations(sae, x, features)  # [b, p, n]
    mask = apply[..., None].expand_as(acts)
    if conditional:
        mask = mask & (acts > 0)
    delta = torch.where(mask, values[:, None, :].float() - acts, torch.zeros_like(acts))
    out = x.float() + _decoded_shift(sae, x, features, delta)
    return torch.where(apply[..., None], out.to(x.dtype), x)


def steer_features(
    sae: Any, x: torch.Tensor, features: torch.Tensor, alphas: torch.Tensor, apply: torch.Tensor
) -> torch.Tensor:
    """Additive steering: ``x + Σ α_j · W_dec[j]`` where ``apply`` is true (alphas ``[b, n]``)."""
    delta = alphas[:, None, :].float() * apply[..., None].float()
    out = x.float() + _decoded_shift(sae, x, features, delta.expand(*x.shape[:-1], -1))
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
    recon = cast(torch.Tensor, sae.decode(acts)).to(x.dtype)
    return torch.where(apply[..., None], recon, x)


@dataclass(frozen=True)
class RowIntervention:
    """One batch's intervention: per-row values, where to apply them, and how.

    ``prompt_apply`` marks the prompt positions to intervene on (false at BOS and padding, and
    for rows without an intervention); ``decode_apply`` says, per row, whether each generated
    token is intervened on too.
    """

    features: torch.Tensor  # [n_features] long
    values: torch.Tensor  # [batch, n_features]: clamp targets, or steering coefficients
    prompt_apply: torch.Tensor  # [batch, prompt_len] bool
    decode_apply: torch.Tensor  # [batch] bool
    mode: Literal["clamp", "add"] = "clamp"
    conditional: bool = False
    keep_error_term: bool = True


class _FastHook:
    """The hot path for standard/JumpReLU SAEs: every tensor prepared once, a handful of small
    ops per call, no host–device synchronisation."""

    def __init__(self, sae: Any, iv: RowIntervention, device: torch.device) -> None:
        f = iv.features.to(device)
        self.w_enc = sae.W_enc[:, f].detach().float().to(device)
        self.b_enc = sae.b_enc[f].detach().float().to(device)
        self.b_dec = sae.b_dec.detach().float().to(device) if sae.cfg.apply_b_dec_to_input else None
        self.w_dec = sae.W_dec[f].detach().float().to(device)
        self.threshold = (
            sae.threshold[f].detach().float().to(device)
            if sae.cfg.architecture() == "jumprelu"
            else None
        )
        self.values = iv.values.float().to(device)[:, None, :]
        self.prompt_apply = iv.prompt_apply.float().to(device)[..., None]
        self.decode_apply = iv.decode_apply.float().to(device)[:, None, None]
        self.iv = iv

    def delta(self, x: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
        if self.iv.mode == "add":
            return self.values * apply
        sae_in = x if self.b_dec is None else x - self.b_dec
        pre = sae_in @ self.w_enc + self.b_enc
        acts = torch.relu(pre)
        if self.threshold is not None:
            acts = acts * (pre > self.threshold)
        if self.iv.conditional:
            apply = apply * (acts > 0)
        return (self.values - acts) * apply


@contextmanager
def installed_intervention(
    model: HookedTransformer, hook_name: str, sae: Any, iv: RowIntervention
) -> Iterator[list[int]]:
    """Install ``iv`` at ``hook_name`` for the duration of the block; always removed.

    The first call is the prompt pass; every later call is one decode step. Yields a list of the
    sequence lengths the hook saw, so callers and tests can check it fired on every step.
    """
    calls: list[int] = []
    device = next(model.parameters()).device
    fast = _FastHook(sae, iv, device) if _fast_path(sae) and iv.keep_error_term else None
    prompt_bool = iv.prompt_apply.to(device)
    decode_bool = iv.decode_apply.to(device)

    def hook(act: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        first = not calls
        calls.append(act.shape[1])
        if fast is not None:
            apply = fast.prompt_apply if first else fast.decode_apply
            delta = fast.delta(act.float(), apply)
            out: torch.Tensor = (act.float() + delta @ fast.w_dec).to(act.dtype)
            return out
        where = prompt_bool if first else decode_bool[:, None].expand(act.shape[0], act.shape[1])
        if iv.mode == "add":
            return steer_features(sae, act, iv.features.to(device), iv.values.to(device), where)
        return clamp_features(
            sae,
            act,
            iv.features.to(device),
            iv.values.to(device),
            where,
            conditional=iv.conditional,
            keep_error_term=iv.keep_error_term,
        )

    try:
        with model.hooks(fwd_hooks=[(hook_name, hook)]):
            yield calls
    finally:
        model.reset_hooks(including_permanent=False)
