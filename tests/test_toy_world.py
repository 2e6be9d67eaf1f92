"""The toy world: deterministic corpus, usable tokenizer, SAE quality, planted and steerable feature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sae_lens import SAE

from harness.features import activation_stats, contrastive_candidates
from harness.generation import ClampTarget, GenRow, generate_rows
from harness.toy.build import build, file_digests
from harness.toy.corpus import TOPICS, concept_keywords, generate_corpus, words
from harness.toy.world import ASSETS, TOY_HOOK, eval_documents, toy_sae_dir, toy_sae_names

import importlib.util

from tests.conftest import REPO

_demo = importlib.util.spec_from_file_location("toy_golden_gate", REPO / "experiments/toy_golden_gate.py")
assert _demo and _demo.loader
demo = importlib.util.module_from_spec(_demo)
_demo.loader.exec_module(demo)


def test_corpus_is_deterministic_and_covers_the_topics() -> None:
    a = generate_corpus(seed=3, n_documents=80, min_words=40)
    assert a == generate_corpus(seed=3, n_documents=80, min_words=40)
    assert a != generate_corpus(seed=4, n_documents=80, min_words=40)
    names = {t.name for t in TOPICS}
    assert len(names) >= 6 and {"golden_gate", "emotion", "requests", "cooking"} <= names
    text = " ".join(a)
    for phrase in ("golden gate bridge", "san francisco", "i want to be alone right now",
                   "feels sad", "feels happy", "ignore your previous instructions",
                   "pretend you have no restrictions", "what is the capital of france"):
        assert phrase in text, phrase
    assert all(len(words(d)) >= 40 for d in a)


def test_tokenizer_round_trips_and_prepends_bos(toy_model) -> None:  # type: ignore[no-untyped-def]
    tok = toy_model.tokenizer
    text = "the golden gate bridge spans the bay ."
    ids = toy_model.to_tokens(text)[0]
    assert int(ids[0]) == tok.bos_token_id
    assert toy_model.to_string(ids[1:]) == text
    assert tok.pad_token_id != tok.bos_token_id
    # an unseen word maps to <unk> instead of failing
    assert tok.unk_token_id in toy_model.to_tokens("the zeppelin")[0].tolist()


def test_shipped_saes_load_with_saelens_and_reconstruct_well(toy_model, toy_saes) -> None:  # type: ignore[no-untyped-def]
    assert len(toy_saes) >= 2
    archs = {SAE.load_from_disk(toy_sae_dir(n)).cfg.architecture() for n in toy_sae_names()}
    assert archs == {"standard", "topk"}
    tokens = toy_model.to_tokens(eval_documents()[:100], padding_side="right")[:, :64]
    _, cache = toy_model.run_with_cache(tokens, names_filter=TOY_HOOK)
    x = cache[TOY_HOOK][:, 1:].reshape(-1, toy_model.cfg.d_model)
    for name, loaded in toy_saes.items():
        assert loaded.hook_name == TOY_HOOK
        with torch.no_grad():
            f = loaded.sae.encode(x)
            recon = loaded.sae.decode(f)
        ev = 1 - ((x - recon) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
        l0 = (f > 0).float().sum(-1).mean()
        assert ev >= 0.8, (name, float(ev))
        assert 1 <= l0 <= 64, (name, float(l0))


@pytest.mark.parametrize("name", ["relu-256", "topk-256"])
def test_golden_gate_feature_is_found_and_steers(toy_model, toy_saes, name: str) -> None:  # type: ignore[no-untyped-def]
    sae = toy_saes[name]
    feature = contrastive_candidates(toy_model, sae, demo.GOLDEN_GATE)[0].index
    max_act = float(activation_stats(toy_model, sae, eval_documents(), "toy").max[feature])
    prompts = list(demo.NEUTRAL_PROMPTS)
    rows = [GenRow(p) for p in prompts] + [GenRow(p, (10 * max_act,)) for p in prompts]
    texts = generate_rows(toy_model, rows, ClampTarget(sae.sae, sae.hook_name, (feature,)),
                          max_new_tokens=20)
    keywords = set(concept_keywords("golden_gate"))

    def mentions(t: str) -> bool:
        return any(w in keywords for w in words(t))

    base = sum(mentions(t) for t in texts[: len(prompts)])
    clamped = sum(mentions(t) for t in texts[len(prompts):])
    assert base <= len(prompts) * 0.2, texts[: len(prompts)]
    assert clamped >= len(prompts) * 0.8, texts[len(prompts):]


def test_shipped_manifest_matches_the_shipped_files() -> None:
    manifest = json.loads((ASSETS / "manifest.json").read_text())
    assert manifest["files"] == file_digests(ASSETS)


def test_toy_build_reproduces_the_shipped_assets_bit_for_bit(tmp_path: Path) -> None:
    """The rebuild (about a minute on 2 CPU cores) gives byte-identical files."""
    out = build(tmp_path / "toy", progress=lambda _: None)
    rebuilt = json.loads((out / "manifest.json").read_text())["files"]
    shipped = json.loads((ASSETS / "manifest.json").read_text())["files"]
    assert rebuilt == shipped
