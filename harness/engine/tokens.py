"""Token bookkeeping shared by every pass over prompts or a corpus: which positions are real
tokens, and the corpus in model-sized batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from transformer_lens import HookedTransformer

__all__ = ["corpus_batches", "real_tokens", "single_token_id"]


def real_tokens(
    model: HookedTransformer, tokens: torch.Tensor, include_bos: bool = False
) -> torch.Tensor:
    """``[batch, pos]`` booleans: true at real tokens, false at padding (and at BOS unless
    ``include_bos``)."""
    tok = model.tokenizer
    assert tok is not None
    real: torch.Tensor = tokens != tok.pad_token_id
    if tok.bos_token_id is not None and not include_bos:
        real &= tokens != tok.bos_token_id
    return real


def corpus_batches(
    model: HookedTransformer, documents: Sequence[str], batch_size: int = 32
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(index of the first document, tokens)`` per batch: BOS-prefixed, right-padded, cut to
    the model's context."""
    for start in range(0, len(documents), batch_size):
        tokens = model.to_tokens(list(documents[start : start + batch_size]), padding_side="right")
        yield start, tokens[:, : model.cfg.n_ctx]


def single_token_id(model: HookedTransformer, word: str, field: str) -> int:
    """The id of ``word`` when the model's tokenizer makes it one token; a SpecError otherwise."""
    from harness.errors import SpecError

    ids = model.to_tokens(word, prepend_bos=False)[0]
    if len(ids) != 1:
        raise SpecError(
            f"{word!r} is not a single token for this model ({len(ids)} tokens)", field=field
        )
    return int(ids[0])
