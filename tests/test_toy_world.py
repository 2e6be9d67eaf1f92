"""The toy world: deterministic corpus, tokenizer, SAE quality, a planted and steerable feature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sae_lens import SAE

from harness.engine.sae_quality import measure_quality, quality_values
from harness.spec import SAEQualityEval
from harness.toy.build import SAEBuildConfig, ToyBuildConfig, build, file_digests
from harness.toy.corpus import TOPICS, generate_corpus, words
from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS
from harness.toy.quality import steering_check
from harness.toy.verify import verify_rebuild
from harness.toy.world import ASSETS, TOY_HOOK, eval_documents, toy_sae_dir, toy_sae_names


def test_corpus_is_deterministic_and_covers_the_topics() -> None:
    a = generate_corpus(seed=3, n_documents=80, min_words=40)
    assert a == generate_corpus(seed=3, n_documents=80, min_words=40)
    assert a != generate_corpus(seed=4, n_documents=80, min_words=40)
    names = {t.name for t in TOPICS}
    assert len(names) >= 6 and {"golden_gate", "emotion", "requests", "cooking"} <= names
    text = " ".join(a)
    for phrase in (
        "golden gate bridge",
        "san francisco",
        "i want to be alone right now",
        "feels sad",
        "feels happy",
        "ignore your previous instructions",
        "pretend you have no restrictions",
        "what is the capital of france",
    ):
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
    for _name, loaded in toy_saes.items():
        assert loaded.hook_name == TOY_HOOK
        record = measure_quality(toy_model, loaded, eval_documents()[:100], SAEQualityEval())
        q = quality_values(record)
        assert q["explained_variance"] >= 0.8 and q["ce_loss_score"] >= 0.95, q
        assert 1 <= q["l0"] <= 64 and q["dead_fraction"] < 0.2, q


@pytest.mark.parametrize("name", ["relu-256", "topk-256"])
def test_golden_gate_feature_is_found_and_steers(toy_model, toy_saes, name: str) -> None:  # type: ignore[no-untyped-def]
    check = steering_check(
        toy_model, toy_saes[name], GOLDEN_GATE, list(NEUTRAL_PROMPTS), eval_documents(), level=10.0
    )
    assert check.baseline_mention_rate <= 0.2, check
    assert check.clamped_mention_rate >= 0.8, check


def test_shipped_manifest_matches_the_shipped_files() -> None:
    manifest = json.loads((ASSETS / "manifest.json").read_text())
    assert manifest["files"] == file_digests(ASSETS)


def test_toy_build_is_bit_for_bit_reproducible_on_one_machine(tmp_path: Path) -> None:
    """Two builds in one process give byte-identical files (a small configuration: the same
    code path as the shipped build, in seconds)."""
    small = ToyBuildConfig(
        n_documents=200,
        train_steps=30,
        sae_documents=60,
        saes=(
            SAEBuildConfig(name="relu-64", architecture="standard", d_sae=64, l1_coefficient=0.5),
            SAEBuildConfig(name="topk-64", architecture="topk", d_sae=64, k=8),
        ),
    )
    a = build(tmp_path / "a", small, progress=lambda _: None)
    b = build(tmp_path / "b", small, progress=lambda _: None)
    digests = json.loads((a / "manifest.json").read_text())["files"]
    assert digests == json.loads((b / "manifest.json").read_text())["files"]
    assert len(digests) == 8


def test_toy_build_reproduces_the_shipped_world_within_cross_cpu_tolerances(
    tmp_path: Path,
) -> None:
    """The full rebuild (about 40 s on 2 CPU cores) matches the shipped world: exact where the
    build is pure Python, within stated tolerances where float kernels differ between CPUs
    (harness.toy.verify), and the same planted features steer."""
    out = build(tmp_path / "toy", progress=lambda _: None)
    checks = verify_rebuild(out)
    failed = [c for c in checks if not c.ok]
    assert not failed, failed
    assert len(checks) >= 20


def test_verify_rebuild_catches_a_different_world(tmp_path: Path) -> None:
    """The tolerance check can fail: a world with perturbed weights and another SAE is refused."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    world = tmp_path / "world"
    shutil.copytree(ASSETS, world)
    path = world / "model" / "model.safetensors"
    state = load_file(str(path))
    state["blocks.0.attn.W_Q"] = state["blocks.0.attn.W_Q"] + 0.01
    save_file(state, str(path))
    relu = world / "saes" / "relu-256" / "sae_weights.safetensors"
    weights = load_file(str(relu))
    gen = torch.Generator().manual_seed(0)
    weights["W_dec"] = weights["W_dec"] + torch.randn(weights["W_dec"].shape, generator=gen)
    save_file(weights, str(relu))
    failed = {c.name for c in verify_rebuild(world) if not c.ok}
    assert "model weights" in failed
    assert "relu-256 explained_variance" in failed
    assert not any(name.startswith("topk-256") for name in failed)


def test_feature_matching_across_checkpoints(toy_model, toy_saes) -> None:  # type: ignore[no-untyped-def]
    from harness.engine.features import contrastive_candidates, match_by_decoder, resolve_feature
    from harness.spec import FeatureByMatch

    relu, topk = toy_saes["relu-256"], toy_saes["topk-256"]
    # oracle: a feature matched against its own SAE is itself, with cosine 1
    best = match_by_decoder(relu, 9, relu)[0]
    assert best.index == 9 and abs(best.score - 1) < 1e-5
    gg_relu = contrastive_candidates(toy_model, relu, GOLDEN_GATE)[0].index
    ref = FeatureByMatch(reference_sae="relu", reference_index=gg_relu)
    index, candidates = resolve_feature(toy_model, topk, ref, "f", {"relu": relu, "topk": topk})
    assert candidates[0].score > 0.5
    assert index in [c.index for c in contrastive_candidates(toy_model, topk, GOLDEN_GATE)[:3]]
