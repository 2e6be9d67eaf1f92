"""Feature statistics, next-token effects, continuation perplexity and the ablation study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.engine.backend import LoadedSAE
from harness.engine.effects import continuation_nll, next_token_effects
from harness.engine.feature_stats import QUANTILES, activation_stats, cached_activation_stats
from harness.engine.generation import ClampTarget
from harness.engine.tokens import corpus_batches, real_tokens, single_token_id
from harness.errors import BackendError, SpecError
from harness.spec import Experiment, HubDataset, PretrainedModel, PretrainedSAE, SaturationClamp
from harness.spec.loading import load_spec
from harness.spec.validate import validate_static
from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS
from harness.toy.world import eval_documents
from tests.conftest import REPO, run_spec


def test_feature_statistics_match_a_direct_computation_and_are_cached(
    toy_model: object, toy_saes: dict[str, LoadedSAE], tmp_path: Path
) -> None:
    sae = toy_saes["relu-256"]
    docs = eval_documents()[:60]
    stats = activation_stats(toy_model, sae, docs, "test")  # type: ignore[arg-type]
    acts = []
    for _, tokens in corpus_batches(toy_model, docs):  # type: ignore[arg-type]
        _, cache = toy_model.run_with_cache(tokens, names_filter=sae.hook_name)  # type: ignore[attr-defined]
        acts.append(sae.encode(cache[sae.hook_name])[real_tokens(toy_model, tokens)])  # type: ignore[arg-type]
    flat = torch.cat(acts)
    assert stats.n_tokens == flat.shape[0]
    assert torch.allclose(stats.max, flat.max(0).values)
    assert torch.allclose(stats.frequency, (flat > 0).float().mean(0))
    for f in (9, 46, 131):
        positive = flat[:, f][flat[:, f] > 0]
        exact = torch.quantile(positive, torch.tensor(QUANTILES))
        # read off a histogram with 30 bins per decade: within one bin (≈ 8 %) above the exact value
        assert torch.all(stats.quantiles[f] >= exact * 0.999)
        assert torch.all(stats.quantiles[f] <= exact * 1.09)
    first, hit = cached_activation_stats(toy_model, {"m": 1}, sae, docs, "test", tmp_path)  # type: ignore[arg-type]
    again, hit2 = cached_activation_stats(toy_model, {"m": 1}, sae, docs, "test", tmp_path)  # type: ignore[arg-type]
    assert (hit, hit2) == (False, True)
    assert torch.equal(first.max, again.max) and torch.equal(first.quantiles, again.quantiles)
    other, hit3 = cached_activation_stats(
        toy_model, {"m": 1}, toy_saes["topk-256"], docs, "t", tmp_path
    )  # type: ignore[arg-type]
    assert not hit3 and not torch.equal(other.max, first.max)  # keyed by the SAE's weights


def test_next_token_effects_and_perplexity_by_hand(
    toy_model: object, toy_saes: dict[str, LoadedSAE]
) -> None:
    sae = toy_saes["relu-256"]
    target = ClampTarget(sae.sae, sae.hook_name, (9,))
    prompts = ["fans filled the", "the weather today is"]
    bridge = single_token_id(toy_model, "bridge", "t")  # type: ignore[arg-type]
    strong = next_token_effects(toy_model, prompts, target, (30.0,), {"bridge": bridge})  # type: ignore[arg-type]
    assert all(e["changed"] and e["iv_top"] == "bridge" for e in strong)
    assert all(e["kl_last"] > 1 and e["logit_shift"]["bridge"] > 5 for e in strong)
    # an add-mode intervention of 0 is the identity: nothing moves
    none = next_token_effects(
        toy_model,
        prompts,
        ClampTarget(sae.sae, sae.hook_name, (9,), mode="add"),
        (0.0,),  # type: ignore[arg-type]
    )
    assert all(abs(e["kl_mean"]) < 1e-6 and not e["changed"] for e in none)
    # perplexity: the mean NLL of the continuation tokens, computed by hand
    prompt = "the weather today is"
    cont = toy_model.to_tokens(" cloudy and mild", prepend_bos=False)[0].tolist()  # type: ignore[attr-defined]
    [(nll, n)] = continuation_nll(toy_model, [prompt], [cont])  # type: ignore[arg-type]
    full = torch.tensor([toy_model.to_tokens(prompt)[0].tolist() + cont])  # type: ignore[attr-defined]
    lp = torch.log_softmax(toy_model(full)[0].float(), -1)  # type: ignore[operator]
    p_len = full.shape[1] - len(cont)
    manual = -np.mean([float(lp[p_len - 1 + i, t]) for i, t in enumerate(cont)])
    assert n == len(cont) and nll == pytest.approx(manual, rel=1e-5)


def test_sad_feature_ablation_lowers_the_logit_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    exp = load_spec(REPO / "experiments" / "toy_attribution.py")
    ablation_only = exp.model_copy(
        update={"studies": exp.studies[1:], "saes": exp.saes[:1], "name": "sad_ablation"}
    )
    spec = tmp_path / "sad.py"
    spec.write_text(
        "from harness.spec import Experiment\n"
        f"DATA = {ablation_only.canonical_json()!r}\n"
        "def spec():\n    return Experiment.model_validate_json(DATA)\n"
    )
    store = run_spec(spec)
    rows = {(r["condition"], r["metric"]): r for r in store.read_json("summary.json")}
    shift = rows[("zero", "metric_shift")]
    assert shift["n"] == 20 and shift["ci_high"] < 0  # logit(sad) − logit(happy) falls
    assert rows[("zero", "metric_shift_p")]["value"] < 0.01
    # on the happy (control) prompts the same ablation does much less
    assert abs(rows[("control:zero", "metric_shift")]["value"]) < abs(shift["value"]) / 3
    [feature] = list(store.records("feature"))
    assert feature["label"] == "sadness" and feature["candidates"][0]["index"] == feature["feature"]
    report = (tmp_path / "reports" / f"{store.run_id}.md").read_text()
    assert "### Next-token table" in report and "metric shift" in report


def test_real_models_need_a_statistics_corpus_and_hub_corpora_fail_fast(
    monkeypatch: pytest.MonkeyPatch, offline_hub: Path
) -> None:
    sweep = SaturationClamp(
        name="s", feature=GOLDEN_GATE, levels=(1.0,), prompts=NEUTRAL_PROMPTS[:2]
    )
    exp = Experiment(
        name="g",
        model=PretrainedModel(name="gpt2"),
        saes=(PretrainedSAE(release="gpt2-small-res-jb", sae_id="blocks.3.hook_resid_pre"),),
        studies=(sweep,),
    )
    with pytest.raises(SpecError, match="set stats_corpus"):
        validate_static(exp)
    validate_static(exp.model_copy(update={"stats_corpus": HubDataset(path="NeelNanda/pile-10k")}))
    from harness.engine.feature_stats import stats_corpus

    with pytest.raises(BackendError, match="stats_corpus: cannot stream dataset"):
        stats_corpus(exp.model_copy(update={"stats_corpus": HubDataset(path="NeelNanda/pile-10k")}))
