"""The toy world's word-level tokenizer, built with the `tokenizers` library (no download)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from harness.toy.corpus import words

__all__ = ["BOS", "EOS", "PAD", "UNK", "build_tokenizer", "load_tokenizer"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
_SPECIALS = (PAD, BOS, EOS, UNK)


def build_tokenizer(texts: Iterable[str], extra_words: Iterable[str] = ()) -> Tokenizer:
    """Build a word-level tokenizer whose vocabulary is every word in ``texts`` (sorted).

    Sorting makes the token ids independent of corpus order, so a rebuild gives the same ids.
    """
    vocab_words = sorted({w for text in texts for w in words(text)} | set(extra_words))
    vocab = {tok: i for i, tok in enumerate((*_SPECIALS, *vocab_words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    # The tokenizer prepends BOS itself, as GPT-2-style TransformerLens tokenizers expect.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])]
    )
    return tok


def load_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    """Load the saved ``tokenizer.json`` as a transformers tokenizer TransformerLens can use."""
    hf = PreTrainedTokenizerFast(
        tokenizer_file=str(path),
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="left",
        add_bos_token=True,
        name_or_path="harness-toy",
    )
    return hf
