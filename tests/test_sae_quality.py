"""SAE quality: the harness's per-sequence numbers equal ``sae_lens.evals.run_evals`` on the same
tokens (a real ActivationsStore over the same documents), and their CIs behave."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset
from sae_lens.evals import EvalConfig, run_evals
from sae_lens.training.activation_scaler import ActivationScaler
from sae_lens.training.activations_store import ActivationsStore

from harness.engine.backend import LoadedSAE, load_sae
from harness.engine.sae_quality import (
    measure_quality,
    paired_quality_difference,
    quality_estimates,
    quality_values,
)
from harness.spec import SAEQualityEval, ToySAE
from harness.toy.world import eval_documents

N_BATCHES, BATCH = 4, 8
pytestmark = pytest.mark.filterwarnings("ignore:.*(training dataset|not tokenized).*:UserWarning")


def _store(model: Any, sae: LoadedSAE, docs: list[str]) -> ActivationsStore:
    """SAELens' own activation store over the raw documents (it tokenizes and packs them)."""
    return ActivationsStore(
        model=model,
        dataset=Dataset.from_dict({"text": docs}),
        streaming=False,
        d_in=sae.sae.cfg.d_in,
        hook_name=sae.hook_name,
        hook_head_index=None,
        context_size=64,
        prepend_bos=True,
        store_batch_size_prompts=BATCH,
        train_batch_size_tokens=4096,
        n_batches_in_buffer=2,
        total_training_tokens=10**6,
        normalize_activations="none",
        dataset_trust_remote_code=False,
        dtype="float32",
        device=torch.device("cpu"),
        seqpos_slice=(None,),
    )


def sae_lens_metrics(
    model: Any, sae: LoadedSAE, docs: list[str], n_batches: int = N_BATCHES
) -> dict[str, float]:
    """run_evals twice on fresh stores (so both passes read the first sequences, as ours do)."""

    def evals(**what: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        config = EvalConfig(batch_size_prompts=BATCH, **what)
        return run_evals(sae.sae, _store(model, sae, docs), model, ActivationScaler(), config)

    recon, _ = evals(n_eval_reconstruction_batches=n_batches, compute_kl=True, compute_ce_loss=True)
    sparse, features = evals(
        n_eval_sparsity_variance_batches=n_batches,
        compute_sparsity_metrics=True,
        compute_variance_metrics=True,
        compute_featurewise_density_statistics=True,
    )
    flat = {k: v for group in (*recon.values(), *sparse.values()) for k, v in group.items()}
    flat["dead_fraction"] = float(np.mean(np.asarray(features["feature_density"]) == 0))
    # the CE increase is the harness's own figure: the difference of the two losses sae_lens gives
    flat["ce_loss_increase"] = flat["ce_loss_with_sae"] - flat["ce_loss_without_sae"]
    return flat


@pytest.mark.parametrize("name", ["relu-256", "topk-256"])
def test_quality_equals_sae_lens_evals_on_the_same_tokens(toy_model: Any, name: str) -> None:
    docs = eval_documents()
    sae = load_sae(ToySAE(name=name), f"toy/{name}")
    record = measure_quality(
        toy_model, sae, docs, SAEQualityEval(n_sequences=N_BATCHES * BATCH, batch_size=5)
    )
    ours = quality_values(record)
    theirs = sae_lens_metrics(toy_model, sae, docs)
    for metric in (
        "explained_variance",
        "mse",
        "l0",
        "l1",
        "dead_fraction",
        "ce_loss_score",
        "ce_loss_with_sae",
        "ce_loss_without_sae",
        "ce_loss_with_ablation",
        "kl_div_score",
        "kl_div_with_sae",
        "kl_div_with_ablation",
    ):
        assert ours[metric] == pytest.approx(theirs[metric], rel=1e-5, abs=1e-6), metric
    assert record["n_sequences"] == N_BATCHES * BATCH and record["context_size"] == 64
    # the checkpoints differ where they should: top-k has L0 = k exactly and some dead features
    if name == "topk-256":
        assert ours["l0"] == pytest.approx(12.0) and ours["dead_fraction"] > 0.05
    else:
        assert ours["explained_variance"] > 0.85 and ours["dead_fraction"] == 0.0


def test_quality_cis_and_paired_differences(toy_model: Any) -> None:
    docs = eval_documents()
    cfg = SAEQualityEval(n_sequences=24)
    relu = measure_quality(toy_model, load_sae(ToySAE(name="relu-256"), "r"), docs, cfg)
    topk = measure_quality(toy_model, load_sae(ToySAE(name="topk-256"), "t"), docs, cfg)
    rng = np.random.default_rng(0)
    for metric, est in quality_estimates(relu, rng).items():
        assert est.n == 24
        if metric == "dead_fraction":
            assert math.isnan(est.ci_low)
        else:
            assert est.ci_low <= est.value <= est.ci_high, metric
    same = paired_quality_difference(relu, relu, "explained_variance", rng)
    assert same.value == 0 and same.ci_low == 0 and same.ci_high == 0
    diff = paired_quality_difference(relu, topk, "explained_variance", rng)
    ev = quality_values(topk)["explained_variance"] - quality_values(relu)["explained_variance"]
    assert diff.value == pytest.approx(ev)
    # pairing removes the between-sequence spread: the paired CI excludes 0 and is narrower
    # than the two unpaired CIs side by side
    assert diff.ci_high < 0
    ci_r = quality_estimates(relu, rng)["explained_variance"]
    assert diff.ci_high - diff.ci_low < ci_r.ci_high - ci_r.ci_low
    # measured on other tokens: nothing pairs, no CI
    other = measure_quality(toy_model, load_sae(ToySAE(name="topk-256"), "t"), docs[100:], cfg)
    unpaired = paired_quality_difference(relu, other, "explained_variance", rng)
    assert unpaired.n == 0 and math.isnan(unpaired.ci_low)


def test_quality_pictures_come_from_consistent_distributions(
    toy_model: Any, tmp_path: Path
) -> None:
    from harness.views.report.quality_plots import quality_pictures

    docs = eval_documents()
    cfg = SAEQualityEval(n_sequences=12)
    records = {}
    for name in ("relu-256", "topk-256"):
        rec = measure_quality(toy_model, load_sae(ToySAE(name=name), name), docs, cfg)
        d = rec["distributions"]
        tokens = sum(rec["per_sequence"]["tokens"])
        fire = np.asarray(d["fire_counts"])
        # the same tokens as the table: Σ firings / tokens is L0; never fired is dead
        assert fire.sum() / tokens == pytest.approx(quality_values(rec)["l0"])
        assert int((fire == 0).sum()) == rec["d_sae"] - rec["alive"]
        l0 = np.asarray(d["l0_counts"])
        assert l0.sum() == tokens and (np.arange(len(l0)) * l0).sum() == fire.sum()
        assert sum(d["magnitude_counts"]) == fire.sum()  # every non-zero activation binned
        h = d["heatmap"]
        assert h["features"] == list(np.argsort(-fire, kind="stable")[:24])
        assert np.asarray(h["values"]).shape == (len(h["tokens"]), 24) and len(h["tokens"]) == 48
        records[f"toy/{name}"] = rec
    if_topk = np.asarray(records["toy/topk-256"]["distributions"]["l0_counts"])
    assert if_topk.argmax() == 12  # top-k: every token has exactly k active features (or fewer)
    lines = quality_pictures(records, tmp_path / "r-files", "q")
    pngs = sorted(p.name for p in (tmp_path / "r-files").iterdir())
    assert pngs == [
        "q-activation-magnitudes.png",
        "q-firing-frequency.png",
        "q-l0-per-token.png",
        "q-top-feature-heatmap.png",
    ]
    assert all(f"(r-files/{p})" in "\n".join(lines) for p in pngs)
    assert all((tmp_path / "r-files" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert quality_pictures({"old": {"per_sequence": {}}}, tmp_path / "x", "q") == []
    # a degenerate record (no tokens, every feature dead) still draws, without dividing by 0
    empty = {
        "per_sequence": {"tokens": [0.0]},
        "distributions": {
            "fire_counts": [0, 0, 0],
            "l0_counts": [0],
            "magnitude_edges": [-4.0, 0.0, 4.0],
            "magnitude_counts": [0, 0],
            "heatmap": {"features": [0, 1], "tokens": [], "values": []},
        },
    }
    assert len(quality_pictures({"empty": empty}, tmp_path / "e-files", "q")) > 4
