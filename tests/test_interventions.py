"""Clamp maths and hooks on the real toy model with SAELens SAEs: standard, TopK and JumpReLU."""

from __future__ import annotations

import copy

import pytest
import torch
from sae_lens.saes.jumprelu_sae import JumpReLUSAE, JumpReLUSAEConfig

from harness.engine.backend import LoadedSAE
from harness.engine.generation import ClampTarget, GenRow, generate_rows, position_masks
from harness.engine.interventions import (
    RowIntervention,
    clamp_features,
    feature_activations,
    installed_intervention,
    steer_features,
)
from harness.toy.world import TOY_HOOK

PROMPTS = ["the weather today is", "we walked across the golden gate", "fans filled the"]
KINDS = ["relu-256", "topk-256", "jumprelu-256"]


@pytest.fixture(scope="module")
def saes(toy_saes) -> dict[str, LoadedSAE]:  # type: ignore[no-untyped-def]
    """The shipped SAEs plus a JumpReLU SAE built from the ReLU one with per-feature thresholds."""
    relu = toy_saes["relu-256"].sae
    jump = JumpReLUSAE(JumpReLUSAEConfig(d_in=relu.cfg.d_in, d_sae=relu.cfg.d_sae))
    with torch.no_grad():
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            getattr(jump, name).copy_(getattr(relu, name))
        jump.threshold.copy_(torch.linspace(0.0, 0.8, relu.cfg.d_sae))
    return {**toy_saes, "jumprelu-256": LoadedSAE("jumprelu-256", jump, TOY_HOOK)}


def _acts(model, prompts):  # type: ignore[no-untyped-def]
    tokens = model.to_tokens(prompts, padding_side="left")
    _, cache = model.run_with_cache(tokens, names_filter=TOY_HOOK)
    return cache[TOY_HOOK]


@pytest.mark.parametrize("name", KINDS)
def test_feature_activations_match_saelens_encode(toy_model, saes, name) -> None:  # type: ignore[no-untyped-def]
    sae = saes[name].sae
    x = _acts(toy_model, PROMPTS)
    idx = torch.tensor([3, 9, 200])
    assert torch.allclose(feature_activations(sae, x, idx), sae.encode(x)[..., idx], atol=1e-5)


@pytest.mark.parametrize("name", KINDS)
def test_clamp_equals_saelens_error_term_path(toy_model, saes, name) -> None:  # type: ignore[no-untyped-def]
    """Our clamp == SAELens' own path: use_error_term=True and a hook on hook_sae_acts_post."""
    sae = saes[name].sae
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


@pytest.mark.parametrize("name", KINDS)
def test_clamping_to_the_current_value_changes_nothing(toy_model, saes, name) -> None:  # type: ignore[no-untyped-def]
    sae = saes[name].sae
    x = _acts(toy_model, PROMPTS)
    idx = torch.tensor([int(sae.encode(x)[0, -1].argmax())])
    current = feature_activations(sae, x, idx)[:, -1, :]
    apply = torch.zeros(x.shape[:2], dtype=torch.bool)
    apply[:, -1] = True
    assert torch.allclose(clamp_features(sae, x, idx, current, apply), x, atol=1e-5)
    # the naive decode(encode(x)) replacement is not a no-op: it drops the reconstruction error
    naive = clamp_features(sae, x, idx, current, apply, keep_error_term=False)
    assert (naive[:, -1] - x[:, -1]).abs().max() > 1e-2


@pytest.mark.parametrize("name", KINDS)
def test_after_clamping_the_feature_re_encodes_to_the_value(toy_model, saes, name) -> None:  # type: ignore[no-untyped-def]
    """With an encoder that reads back what the decoder writes (W_enc[:, i] · W_dec[i] = 1), a
    conditional clamp re-encodes to the target wherever the feature was active, and leaves the
    other positions alone."""
    sae = copy.deepcopy(saes[name].sae)
    x = _acts(toy_model, PROMPTS)
    with torch.no_grad():
        sae.W_enc[:, 9] = sae.W_dec[9] / sae.W_dec[9].pow(2).sum()
    idx = torch.tensor([9])
    before = feature_activations(sae, x, idx)[..., 0]
    active = before > 0
    assert active.any() and (~active).any()
    values = torch.tensor([[4.0], [7.5], [12.0]])
    apply = torch.ones(x.shape[:2], dtype=torch.bool)
    out = clamp_features(sae, x, idx, values, apply, conditional=True)
    got = feature_activations(sae, out, idx)[..., 0]
    target = values.expand_as(got)
    assert torch.allclose(got[active], target[active], atol=1e-4)
    assert torch.equal(out[~active], x[~active])


def test_additive_steering_adds_the_decoder_direction(toy_model, saes) -> None:  # type: ignore[no-untyped-def]
    sae = saes["relu-256"].sae
    x = _acts(toy_model, PROMPTS)
    apply = torch.ones(x.shape[:2], dtype=torch.bool)
    apply[0] = False
    out = steer_features(sae, x, torch.tensor([9, 46]), torch.tensor([[2.0, 1.0]] * 3), apply)
    expected = x + 2.0 * sae.W_dec[9] + 1.0 * sae.W_dec[46]
    assert torch.equal(out[0], x[0])
    assert torch.allclose(out[1:], expected[1:], atol=1e-5)


@pytest.mark.parametrize("name", KINDS)
def test_fast_hook_equals_the_pure_functions(toy_model, saes, name) -> None:  # type: ignore[no-untyped-def]
    sae = saes[name].sae
    tokens = toy_model.to_tokens(PROMPTS, padding_side="left")
    prompt_apply, _ = position_masks(toy_model, tokens, "all")
    prompt_apply[0] = False
    for mode in ("clamp", "add"):
        iv = RowIntervention(
            torch.tensor([9]),
            torch.tensor([[3.0], [9.0], [15.0]]),
            prompt_apply,
            torch.tensor([False, True, True]),
            mode=mode,
        )  # type: ignore[arg-type]
        with torch.no_grad(), installed_intervention(toy_model, TOY_HOOK, sae, iv):
            hooked = toy_model(tokens)
        fn = steer_features if mode == "add" else clamp_features

        def pure(act, hook, fn=fn, iv=iv):  # type: ignore[no-untyped-def]
            return fn(sae, act, iv.features, iv.values, prompt_apply)

        with torch.no_grad():
            expected = toy_model.run_with_hooks(tokens, fwd_hooks=[(TOY_HOOK, pure)])
        assert (hooked - expected).abs().max() < 1e-4, mode


def test_rows_not_applied_are_bit_identical(toy_model, saes) -> None:  # type: ignore[no-untyped-def]
    sae = saes["relu-256"].sae
    x = _acts(toy_model, PROMPTS)
    apply = torch.zeros(x.shape[:2], dtype=torch.bool)
    apply[1] = True
    out = clamp_features(sae, x, torch.tensor([9]), torch.full((3, 1), 30.0), apply)
    assert torch.equal(out[0], x[0]) and torch.equal(out[2], x[2])
    assert not torch.equal(out[1], x[1])


@pytest.mark.parametrize("name", KINDS)
def test_unclamped_rows_reproduce_plain_generation_and_batching_is_invisible(
    toy_model,
    saes,
    name,  # type: ignore[no-untyped-def]
) -> None:
    sae = saes[name]
    target = ClampTarget(sae.sae, sae.hook_name, (9,))
    plain = [
        toy_model.to_string(
            toy_model.generate(
                p, max_new_tokens=12, do_sample=False, verbose=False, return_type="tokens"
            )[0, -12:]
        ).strip()
        for p in PROMPTS
    ]
    rows = [GenRow(p) for p in PROMPTS] + [GenRow(p, (25.0,)) for p in PROMPTS]
    mixed = generate_rows(toy_model, rows, target, max_new_tokens=12)
    assert mixed[:3] == plain
    alone = [
        generate_rows(toy_model, [GenRow(p, (25.0,))], target, max_new_tokens=12)[0]
        for p in PROMPTS
    ]
    assert mixed[3:] == alone
    assert mixed[3:] != plain


def test_position_modes(toy_model) -> None:  # type: ignore[no-untyped-def]
    tokens = toy_model.to_tokens(["a b c d", "the bay"], padding_side="left")  # 5 and 3 tokens
    real = tokens > 1  # ids 0 and 1 are <pad> and <bos>
    assert torch.equal(position_masks(toy_model, tokens, "all")[0], real)
    assert position_masks(toy_model, tokens, "all")[1] is True
    prompt_mask, on_decode = position_masks(toy_model, tokens, "prompt")
    assert torch.equal(prompt_mask, real) and not on_decode
    gen_mask, on_decode = position_masks(toy_model, tokens, "generated")
    assert not gen_mask.any() and on_decode
    last, on_decode = position_masks(toy_model, tokens, "last")
    assert last[:, -1].all() and last.sum() == 2 and not on_decode
    explicit, _ = position_masks(toy_model, tokens, (0,))
    assert explicit[0, 1] and explicit[1, 3] and explicit.sum() == 2  # first token after BOS
    with_bos, _ = position_masks(toy_model, tokens, "all", include_bos=True)
    assert with_bos.sum() == real.sum() + 2


def test_hook_fires_on_every_decode_step_and_is_always_removed(toy_model, saes) -> None:  # type: ignore[no-untyped-def]
    sae = saes["relu-256"]
    tokens = toy_model.to_tokens(PROMPTS[:2], padding_side="left")
    iv = RowIntervention(
        torch.tensor([9]), torch.tensor([[20.0], [20.0]]), tokens > 1, torch.tensor([True, True])
    )
    with installed_intervention(toy_model, TOY_HOOK, sae.sae, iv) as calls:
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
        with installed_intervention(toy_model, TOY_HOOK, sae.sae, iv):
            raise RuntimeError("boom")
    assert not toy_model.hook_dict[TOY_HOOK].fwd_hooks
