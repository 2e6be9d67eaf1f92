"""Model-side measurements of an intervention: next-token effects and continuation perplexity.

Both are teacher-forced forward passes (no generation). :func:`next_token_effects` compares the
model with and without an intervention on the same prompts: the top next token, its probability,
logit shifts of named tokens and of a metric, and the KL divergence of the next-token
distributions. :func:`continuation_nll` scores a generated continuation under the *unintervened*
model: the fluency measure that needs no judge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformer_lens import HookedTransformer

from harness.engine.generation import ClampTarget, position_masks
from harness.engine.interventions import RowIntervention, installed_intervention
from harness.engine.tokens import real_tokens

__all__ = ["continuation_nll", "next_token_effects"]

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _token_text(model: HookedTransformer, token: int) -> str:
    text = model.to_string(torch.tensor([token]))
    assert isinstance(text, str)
    return text


@torch.no_grad()
def next_token_effects(
    model: HookedTransformer,
    prompts: Sequence[str],
    target: ClampTarget,
    values: Sequence[float],
    named_tokens: dict[str, int] | None = None,
    metric: MetricFn | None = None,
    batch_size: int = 32,
) -> list[dict[str, Any]]:
    """Per prompt: what the intervention (``values`` for ``target.features`` at
    ``target.positions``) does to the next-token distribution after the prompt.

    Keys: ``base_top`` / ``iv_top`` (token text), ``base_top_p`` / ``iv_top_p``, ``changed``
    (top token differs), ``p_shift`` (probability of the baseline top token, intervened minus
    baseline), ``kl_last`` (KL(baseline ‖ intervened) at the last position, nats), ``kl_mean``
    (the same averaged over every real prompt position: the side effect on the whole text),
    ``logit_shift`` per named token, and ``metric_base`` / ``metric_iv`` when a metric is given.
    """
    named_tokens = named_tokens or {}
    out: list[dict[str, Any]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        tokens = model.to_tokens(chunk, padding_side="left")
        base_logits = model(tokens).float()
        prompt_mask, _ = position_masks(model, tokens, target.positions, target.include_bos)
        iv = RowIntervention(
            features=torch.tensor(target.features, dtype=torch.long),
            values=torch.tensor([list(values)] * len(chunk), dtype=torch.float32),
            prompt_apply=prompt_mask,
            decode_apply=torch.zeros(len(chunk), dtype=torch.bool),
            mode=target.mode,
            conditional=target.conditional,
            keep_error_term=target.keep_error_term,
        )
        with installed_intervention(model, target.hook_name, target.sae, iv):
            iv_logits = model(tokens).float()
        base_lp = torch.log_softmax(base_logits, dim=-1)
        iv_lp = torch.log_softmax(iv_logits, dim=-1)
        kl = (base_lp.exp() * (base_lp - iv_lp)).sum(-1)  # [batch, pos]
        # the prediction made at BOS sees nothing the intervention changes (KL 0 there): the
        # mean is over the real tokens after it, as docs/metrics.md defines it
        real = real_tokens(model, tokens).float()
        kl_mean = (kl * real).sum(1) / real.sum(1).clamp(min=1)
        m_base = metric(base_logits, tokens) if metric is not None else None
        m_iv = metric(iv_logits, tokens) if metric is not None else None
        for row in range(len(chunk)):
            b, v = base_lp[row, -1], iv_lp[row, -1]
            b_top, v_top = int(b.argmax()), int(v.argmax())
            rec: dict[str, Any] = {
                "base_top": _token_text(model, b_top),
                "base_top_p": float(b[b_top].exp()),
                "iv_top": _token_text(model, v_top),
                "iv_top_p": float(v[v_top].exp()),
                "changed": b_top != v_top,
                "p_shift": float(v[b_top].exp() - b[b_top].exp()),
                "kl_last": float(kl[row, -1]),
                "kl_mean": float(kl_mean[row]),
                "logit_shift": {
                    word: float(iv_logits[row, -1, t] - base_logits[row, -1, t])
                    for word, t in named_tokens.items()
                },
            }
            if m_base is not None and m_iv is not None:
                rec["metric_base"] = float(m_base[row])
                rec["metric_iv"] = float(m_iv[row])
            out.append(rec)
    return out


@torch.no_grad()
def continuation_nll(
    model: HookedTransformer,
    prompts: Sequence[str],
    continuations: Sequence[Sequence[int]],
    batch_size: int = 32,
) -> list[tuple[float, int]]:
    """Mean negative log-likelihood (nats per token) of each continuation's tokens given its
    prompt, under the model as loaded (no intervention); with the number of tokens scored.
    Perplexity is ``exp`` of it."""
    tok = model.tokenizer
    assert tok is not None
    pad = int(tok.pad_token_id if tok.pad_token_id is not None else 0)
    out: list[tuple[float, int]] = []
    for start in range(0, len(prompts), batch_size):
        seqs, spans = [], []
        for prompt, cont in zip(
            prompts[start : start + batch_size],
            continuations[start : start + batch_size],
            strict=True,
        ):
            p = model.to_tokens(prompt)[0].tolist()
            seq = (p + list(cont))[: model.cfg.n_ctx]
            seqs.append(seq)
            spans.append((len(p), len(seq)))
        width = max(len(s) for s in seqs)
        batch = torch.full((len(seqs), width), pad, dtype=torch.long)
        for i, s in enumerate(seqs):
            batch[i, : len(s)] = torch.tensor(s)
        lp = torch.log_softmax(model(batch.to(model.cfg.device)).float(), dim=-1).cpu()
        for i, (lo, hi) in enumerate(spans):
            if hi <= lo:
                out.append((float("nan"), 0))
                continue
            targets = batch[i, lo:hi]
            scores = lp[i, lo - 1 : hi - 1].gather(-1, targets[:, None])[:, 0]
            out.append((float(-scores.mean()), hi - lo))
    return out
