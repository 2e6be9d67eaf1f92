"""Clamp maths and hooks on the real toy model and SAELens SAEs (standard and TopK)."""

from __future__ import annotations

import pytest
import torch

from harness.generation import ClampTarget, GenRow, generate_rows
from harness.interventions import RowClamp, clamp_features, feature_activations, installed_clamp
from harness.toy.world import TOY_HOOK

PROMPTS = ["the weather today is", "we walked across the golden gate", "fans filled the"]


def _acts(model, prompts):  # type: ignore[no-untyped-def]
    tokens = model.to_tokens(prompts, padding_side="left")
    _, cache = model.run_with_cache(tokens, names_filter=TOY_HOOK)
    return cache[TOY_HOOK]


@pytest.mark.parametrize("name", ["relu-256", "topk-256"])
def test_feature_activations_match_saelens_encode(toy_model, toy_saes, name) -> None:  # type: ignore[no-untyped-def]
    sae = toy_saes[name].sae
    x = _acts(toy_model, PROMPTS)
    idx = torch.tensor([3, 9, 200])
    assert torch.allclose(feature_activations(sae, x, idx), sae.encode(x)[..., idx], atol=1e-5)


@pytest.mark.parametrize("name", ["relu-256", "topk-256"])
def test_clamping_to_the_current_value_changes_nothing(toy_model, toy_saes, name) -> None:  # type: ignore[no-untyped-def]
    sae = toy_saes[name].sae
    x = _acts(toy_model, PROMPTS)
    idx = torch.tensor([int(sae.encode(x)[0, -1].argmax())])
    current = feature_activations(sae, x, idx)[:, -1, :]  # per-row value at the last position
    apply = torch.zeros(x.shape[:2], dtype=torch.bool)
    apply[:, -1] = True
    out = clamp_features(sae, x, idx, current, apply)
    assert torch.allclose(out, x, atol=1e-5)
    # the naive decode(encode(x)) replacement is not a no-op: it drops the reconstruction error
    naive = clamp_features(sae, x, idx, current, apply, keep_error_term=False)
    assert (naive[:, -1] - x[:, -1]).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["relu-256", "topk-256"])
def test_clamp_equals_saelens_error_term_path(toy_model, toy_saes, name) -> None:  # type: ignore[no-untyped-def]
    """Our clamp == SAELens' own path: use_error_term=True and a hook on hook_sae_acts_post."""
    sae = toy_saes[name].sae
    tokens = toy_model.to_tokens(PROMPTS, padding_side="left")
    values = torch.tensor([[4.0], [7.5], [12.0]])
    apply = torch.ones(tokens.shape, dtype=torch.bool)

    def ours(act, hook):  # type: ignore[no-untyped-def]
        return clamp_features(sae, act, torch.tensor([9]), values, apply)

    def set_feature(acts, hook):  # type: ignore[no-untyped-def]
        acts[..., 9] = values[:, None, 0]
        return acts

    def saelens(act, hook):  # type: ignore[no-untyped-def]
        sae.use_error_term = True
        try:
            return sae.run_with_hooks(act, fwd_hooks=[("hook_sae_acts_post", set_feature)])
        finally:
            sae.use_error_term = False

    with torch.no_grad():
        a = toy_model.run_with_hooks(tokens, fwd_hooks=[(TOY_HOOK, ours)])
        b = toy_model.run_with_hooks(tokens, fwd_hooks=[(TOY_HOOK, saelens)])
    assert (a - b).abs().max() < 1e-4


def test_rows_not_applied_are_bit_identical(toy_model, toy_saes) -> None:  # type: ignore[no-untyped-def]
    sae = toy_saes["relu-256"].sae
    x = _acts(toy_model, PROMPTS)
    apply = torch.zeros(x.shape[:2], dtype=torch.bool)
    apply[1] = True
    out = clamp_features(sae, x, torch.tensor([9]), torch.full((3, 1), 30.0), apply)
    assert torch.equal(out[0], x[0]) and torch.equal(out[2], x[2])
    assert not torch.equal(out[1], x[1])


def test_unclamped_rows_reproduce_plain_generation_and_batching_is_invisible(
    toy_model, toy_saes
) -> None:  # type: ignore[no-untyped-def]
    sae = toy_saes["relu-256"]
    target = ClampTarget(sae.sae, sae.hook_name, (9,))
    plain = [
        toy_model.to_string(
            toy_model.generate(
                p, max_new_tokens=12, do_sample=False, verbose=False, return_type="tokens"
            )[0, -12:]
        ).strip()
        for p in PROMPTS
    ]
    mixed = generate_rows(
        toy_model,
        [GenRow(p) for p in PROMPTS] + [GenRow(p, (25.0,)) for p in PROMPTS],
        target,
        max_new_tokens=12,
    )
    assert mixed[:3] == plain
    alone = [
        generate_rows(toy_model, [GenRow(p, (25.0,))], target, max_new_tokens=12)[0]
        for p in PROMPTS
    ]
    assert mixed[3:] == alone
    assert mixed[3:] != plain


def test_hook_fires_on_every_decode_step_and_is_always_removed(toy_model, toy_saes) -> None:  # type: ignore[no-untyped-def]
    sae = toy_saes["relu-256"]
    tokens = toy_model.to_tokens(PROMPTS[:2], padding_side="left")
    clamp = RowClamp(
        features=torch.tensor([9]),
        values=torch.tensor([[20.0], [20.0]]),
        active=torch.tensor([True, True]),
        prompt_mask=tokens > 1,
    )
    with installed_clamp(toy_model, TOY_HOOK, sae.sae, clamp) as calls:
        toy_model.generate(
            tokens,
            max_new_tokens=6,
            do_sample=False,
            verbose=False,
            padding_side="left",
            stop_at_eos=False,
        )
    assert calls == [tokens.shape[1], 1, 1, 1, 1, 1]  # the prompt pass, then one per new token
    assert not toy_model.hook_dict[TOY_HOOK].fwd_hooks

    with pytest.raises(RuntimeError):
        with installed_clamp(toy_model, TOY_HOOK, sae.sae, clamp):
            raise RuntimeError("boom")
    assert not toy_model.hook_dict[TOY_HOOK].fwd_hooks
