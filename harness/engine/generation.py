"""Batched generation with per-row interventions: a whole sweep is one KV-cached generation.

Rows are left-padded into one batch; each row carries its own clamp values (or none, for the
unclamped baseline), and the clamp applies to the prompt and to every decode step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformer_lens import HookedTransformer

from harness.engine.interventions import RowIntervention, installed_intervention
from harness.engine.tokens import real_tokens
from harness.errors import HarnessError
from harness.spec import Positions

__all__ = ["ClampTarget", "GenRow", "auto_batch_size", "generate_rows", "position_masks"]


@dataclass(frozen=True)
class GenRow:
    """One row to generate: a prompt and the clamp values for it (None = no intervention)."""

    prompt: str
    values: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ClampTarget:
    """Where and how rows are clamped: an SAE at a hook point and the features it sets."""

    sae: Any
    hook_name: str
    features: tuple[int, ...]
    keep_error_term: bool = True
    conditional: bool = False
    positions: Positions = "all"
    mode: Literal["clamp", "add"] = "clamp"
    include_bos: bool = False


def position_masks(
    model: HookedTransformer, tokens: torch.Tensor, positions: Positions, include_bos: bool = False
) -> tuple[torch.Tensor, bool]:
    """Which prompt positions to intervene on (``[batch, prompt_len]``), and whether to intervene
    on generated tokens.

    ``all``: every prompt token and every generated one; ``prompt``: prompt tokens only;
    ``generated``: generated tokens only; ``last``: the last prompt token only; a tuple of ints:
    those prompt positions, counted from 0 at the first token after BOS. Padding is never
    intervened on, BOS only with ``include_bos``.
    """
    tok = model.tokenizer
    assert tok is not None
    real = real_tokens(model, tokens, include_bos)
    if positions == "all":
        return real, True
    if positions == "prompt":
        return real, False
    if positions == "generated":
        return torch.zeros_like(real), True
    if positions == "last":
        last = torch.zeros_like(real)
        last[:, -1] = True  # left padding: the last column is every prompt's last token
        return last, False
    assert isinstance(positions, tuple)
    # index 0 = first token after BOS; BOS (if any) sits right before the first real token
    first = (tokens != tok.pad_token_id).float().argmax(dim=1)
    if tok.bos_token_id is not None:
        first = first + (tokens[torch.arange(len(tokens)), first] == tok.bos_token_id).long()
    mask = torch.zeros_like(real)
    for row in range(tokens.shape[0]):
        for p in positions:
            col = int(first[row]) + p
            if col >= tokens.shape[1]:
                raise HarnessError(
                    f"position {p} is past the end of prompt {row} of this batch "
                    f"({tokens.shape[1] - int(first[row])} tokens after BOS)"
                )
            mask[row, col] = True
    return mask, False


def auto_batch_size(model: HookedTransformer, seq_len: int, budget_mb: float = 1024.0) -> int:
    """Rows per batch so the KV cache, activations and logits stay within ``budget_mb``."""
    cfg = model.cfg
    bytes_per = torch.finfo(cfg.dtype).bits // 8
    kv = 2 * cfg.n_layers * seq_len * cfg.d_model * bytes_per
    acts = 4 * seq_len * max(cfg.d_model, cfg.d_mlp or 0) * bytes_per
    logits = seq_len * cfg.d_vocab * 4
    return max(1, int(budget_mb * 2**20 // (kv + acts + logits)))


@torch.no_grad()
def generate_rows(
    model: HookedTransformer,
    rows: Sequence[GenRow],
    target: ClampTarget | None,
    *,
    max_new_tokens: int,
    greedy: bool = True,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    out_tokens: list[list[int]] | None = None,
) -> list[str]:
    """Generate a continuation for every row; returns the continuation texts in row order.

    Args:
        model: the TransformerLens model (its tokenizer must have a pad token).
        rows: prompts with their clamp values.
        target: the SAE, hook and features the values refer to; None when no row is clamped.
        max_new_tokens: tokens generated per row.
        greedy: argmax decoding; otherwise sampling at ``temperature`` seeded by ``seed``.
        batch_size: rows per forward pass; None picks it from a 1 GiB memory budget.
        on_batch: called with the number of rows finished after each batch (progress bars).
        out_tokens: if given, each row's generated token ids are appended to it (in row order),
            so a continuation can be scored exactly as it was generated.
    """
    if any(r.values is not None for r in rows) and target is None:
        raise ValueError("rows carry clamp values but no clamp target was given")
    out: list[str] = []
    if batch_size is None:
        longest = model.to_tokens([r.prompt for r in rows], padding_side="left").shape[1]
        batch_size = auto_batch_size(model, longest + max_new_tokens)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        tokens = model.to_tokens([r.prompt for r in chunk], padding_side="left")
        prompt_len = tokens.shape[1]
        torch.manual_seed(seed + start)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens,
            do_sample=not greedy,
            stop_at_eos=False,
            verbose=False,
            padding_side="left",
            return_type="tokens",
        )
        if not greedy:
            kwargs["temperature"] = temperature
        if target is not None and any(r.values is not None for r in chunk):
            n = len(target.features)
            active = torch.tensor([r.values is not None for r in chunk])
            prompt_mask, on_decode = position_masks(
                model, tokens, target.positions, target.include_bos
            )
            iv = RowIntervention(
                features=torch.tensor(target.features, dtype=torch.long),
                values=torch.tensor(
                    [r.values if r.values is not None else (0.0,) * n for r in chunk],
                    dtype=torch.float32,
                ),
                prompt_apply=prompt_mask & active[:, None],
                decode_apply=active & on_decode,
                mode=target.mode,
                conditional=target.conditional,
                keep_error_term=target.keep_error_term,
            )
            with installed_intervention(model, target.hook_name, target.sae, iv):
                generated = model.generate(tokens, **kwargs)
        else:
            generated = model.generate(tokens, **kwargs)
        assert isinstance(generated, torch.Tensor)
        for row_tokens in generated[:, prompt_len:]:
            if out_tokens is not None:
                out_tokens.append([int(t) for t in row_tokens])
            text = model.to_string(row_tokens)
            assert isinstance(text, str)
            out.append(text.strip())
        if on_batch is not None:
            on_batch(len(chunk))
    return out
