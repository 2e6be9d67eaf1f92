"""Batched generation with per-row interventions: a whole sweep is one KV-cached generation.

Rows are left-padded into one batch; each row carries its own clamp values (or none, for the
unclamped baseline), and the clamp applies to the prompt and to every decode step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformer_lens import HookedTransformer

from harness.interventions import RowClamp, installed_clamp

__all__ = ["ClampTarget", "GenRow", "generate_rows"]


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


def _prompt_mask(model: HookedTransformer, tokens: torch.Tensor) -> torch.Tensor:
    tok = model.tokenizer
    assert tok is not None
    mask: torch.Tensor = tokens != tok.pad_token_id
    if tok.bos_token_id is not None:
        mask &= tokens != tok.bos_token_id
    return mask


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
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Generate a continuation for every row; returns the continuation texts in row order.

    Args:
        model: the TransformerLens model (its tokenizer must have a pad token).
        rows: prompts with their clamp values.
        target: the SAE, hook and features the values refer to; None when no row is clamped.
        max_new_tokens: tokens generated per row.
        greedy: argmax decoding; otherwise sampling at ``temperature`` seeded by ``seed``.
        batch_size: rows per forward pass (memory budget).
        on_batch: called with the number of rows finished after each batch (progress bars).
    """
    if any(r.values is not None for r in rows) and target is None:
        raise ValueError("rows carry clamp values but no clamp target was given")
    out: list[str] = []
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
            values = torch.tensor(
                [r.values if r.values is not None else (0.0,) * n for r in chunk],
                dtype=torch.float32,
            )
            clamp = RowClamp(
                features=torch.tensor(target.features, dtype=torch.long),
                values=values,
                active=torch.tensor([r.values is not None for r in chunk]),
                prompt_mask=_prompt_mask(model, tokens),
                conditional=target.conditional,
                keep_error_term=target.keep_error_term,
            )
            with installed_clamp(model, target.hook_name, target.sae, clamp):
                generated = model.generate(tokens, **kwargs)
        else:
            generated = model.generate(tokens, **kwargs)
        assert isinstance(generated, torch.Tensor)
        for row_tokens in generated[:, prompt_len:]:
            text = model.to_string(row_tokens)
            assert isinstance(text, str)
            out.append(text.strip())
        if on_batch is not None:
            on_batch(len(chunk))
    return out
