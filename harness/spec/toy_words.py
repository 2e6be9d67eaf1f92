"""Words the toy world does not know: every text its tokenizer will read (prompts, contrast
sets, instructions) is checked the same way before compute (the toy tokenizer is word-level;
an unknown word becomes ``<unk>``)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from harness.errors import HarnessWarning, SpecError
from harness.spec import Experiment, FeatureByContrast, PromptFile
from harness.studies.registry import kind_of

__all__ = ["check_toy_words", "toy_texts", "unknown_words"]


def toy_texts(exp: Experiment) -> Iterator[tuple[str, str]]:
    """Every text of the spec the toy model reads, with its field path: each study's prompts,
    the contrast sets of its features and its instructions."""
    for i, study in enumerate(exp.studies):
        kind = kind_of(study)
        for name, prompts in kind.prompt_sets(study):
            if not isinstance(prompts, PromptFile):
                for j, prompt in enumerate(prompts):
                    yield f"studies.{i}.{name}.{j}", prompt
        for name, text in kind.instructions(exp, study):
            yield f"studies.{i}.{name}", text
        for sub, ref in kind.features(study):
            if isinstance(ref, FeatureByContrast):
                for side in ("positive", "negative"):
                    for j, text in enumerate(getattr(ref, side)):
                        yield f"studies.{i}.{sub}.{side}.{j}", text


def unknown_words(tok: Any, text: str) -> tuple[list[str], int]:
    """The words of ``text`` the toy tokenizer does not know (they become <unk>) and how many
    words it has, split the way the tokenizer splits them."""
    backend = tok.backend_tokenizer
    normal = backend.normalizer.normalize_str(text)
    pieces = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normal)]
    vocab = tok.get_vocab()
    return [w for w in pieces if w not in vocab], len(pieces)


def check_toy_words(exp: Experiment) -> None:
    """Every text the toy tokenizer will see is checked the same way: an instruction with
    unknown words is refused (its control would measure nothing); prompts and contrast sets
    warn, or are refused with ``unknown_words='refuse'``."""
    from harness.toy.tokenizer import load_tokenizer
    from harness.toy.world import ASSETS

    tok = load_tokenizer(ASSETS / "tokenizer.json")
    instruction_paths = {
        f"studies.{i}.{name}"
        for i, study in enumerate(exp.studies)
        for name, _ in kind_of(study).instructions(exp, study)
    }
    unknown: dict[str, list[str]] = {}
    for path, text in toy_texts(exp):
        missing, total = unknown_words(tok, text)
        if not missing:
            continue
        if path in instruction_paths:
            raise SpecError(
                f"the prompt-only control would not be meaningful: {len(missing)} of {total} "
                f"words of its instruction {text!r} are unknown to the toy tokenizer "
                f"({', '.join(dict.fromkeys(missing))}); write control_instruction and the "
                "feature's label in the toy corpus's words, or leave 'prompt_only' out of controls",
                field=path,
            )
        unknown.setdefault(path, missing)
    if unknown:
        path, words = next(iter(unknown.items()))
        message = (
            f"{len(unknown)} text(s) hold words the toy tokenizer does not know (they become "
            f"<unk>), e.g. {list(dict.fromkeys(words))[:5]} at {path}"
        )
        if exp.unknown_words == "refuse":
            raise SpecError(message + "; use the toy corpus's words", field=path)
        warnings.warn(
            message + " (unknown_words='refuse' makes this an error)", HarnessWarning, stacklevel=2
        )
