"""Half precision on the CPU (what torch supports there): bfloat16 and float16 models with a
no-op intervention generate exactly what the plain model generates, and a clamp is computed from
the SAE's own weights with the error term kept. tests/gpu/ repeats these on CUDA."""

from __future__ import annotations

import copy

import pytest
import torch

from harness.engine.generation import ClampTarget, GenRow, generate_rows
from harness.engine.interventions import clamp_features, feature_activations
from harness.toy.world import TOY_HOOK

PROMPTS = ["the weather today is", "we walked across the golden gate", "fans filled the"]
DTYPES = [torch.bfloat16, torch.float16]
# a clamp's shift, computed in float32 from half-precision weights, then written in half
TOLERANCE = {torch.bfloat16: 0.08, torch.float16: 0.01}


@pytest.fixture(scope="module", params=DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def half(request, toy_model, toy_saes):  # type: ignore[no-untyped-def]
    dtype = request.param
    model = copy.deepcopy(toy_model).to(dtype)
    sae = copy.deepcopy(toy_saes["relu-256"].sae).to(dtype)
    return dtype, model, sae


def test_a_no_op_intervention_generates_exactly_the_plain_continuations(half) -> None:  # type: ignore[no-untyped-def]
    dtype, model, sae = half
    assert model.cfg.dtype == dtype and next(model.parameters()).dtype == dtype
    plain_tokens: list[list[int]] = []
    noop_tokens: list[list[int]] = []
    plain = generate_rows(
        model, [GenRow(p) for p in PROMPTS], None, max_new_tokens=8, out_tokens=plain_tokens
    )
    target = ClampTarget(sae=sae, hook_name=TOY_HOOK, features=(7, 42), mode="add")
    noop = generate_rows(
        model,
        [GenRow(p, (0.0, 0.0)) for p in PROMPTS],
        target,
        max_new_tokens=8,
        out_tokens=noop_tokens,
    )
    assert noop == plain and noop_tokens == plain_tokens
    assert any(t.strip() for t in plain)


def test_clamping_to_the_current_value_returns_the_activations_bit_for_bit(half) -> None:  # type: ignore[no-untyped-def]
    dtype, model, sae = half
    tokens = model.to_tokens(PROMPTS, padding_side="left")
    _, cache = model.run_with_cache(tokens, names_filter=TOY_HOOK)
    x = cache[TOY_HOOK]
    assert x.dtype == dtype
    idx = torch.tensor([int(sae.encode(x)[0, -1].argmax())], device=x.device)
    current = feature_activations(sae, x, idx)[:, -1, :]
    apply = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
    apply[:, -1] = True
    out = clamp_features(sae, x, idx, current, apply)
    assert out.dtype == dtype and torch.equal(out, x)


def test_a_clamp_moves_along_the_features_decoder_row_and_keeps_the_error_term(half) -> None:  # type: ignore[no-untyped-def]
    dtype, model, sae = half
    tokens = model.to_tokens(PROMPTS, padding_side="left")
    _, cache = model.run_with_cache(tokens, names_filter=TOY_HOOK)
    x = cache[TOY_HOOK]
    idx = torch.tensor([int(sae.encode(x)[0, -1].argmax())], device=x.device)
    apply = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
    apply[:, -1] = True
    values = torch.full((len(PROMPTS), 1), 6.0, device=x.device)
    out = clamp_features(sae, x, idx, values, apply)
    assert out.dtype == dtype
    assert torch.equal(out[:, :-1], x[:, :-1])  # untouched where not applied
    # the shift is (value − activation) × the decoder row, from the SAE's own half weights;
    # nothing else moves: x's reconstruction error is kept
    acts = feature_activations(sae, x, idx)[:, -1, 0]
    want = x[:, -1].float() + (6.0 - acts)[:, None] * sae.W_dec[idx[0]].float()
    assert (out[:, -1].float() - want).abs().max() < TOLERANCE[dtype] * want.abs().max()
    # and it tracks the same clamp done wholly in float32 (same weights, upcast)
    ref = clamp_features(copy.deepcopy(sae).float(), x.float(), idx, values, apply)
    assert (out.float() - ref).abs().max() < TOLERANCE[dtype] * ref.abs().max()
