"""Finding features (contrastive search) and measuring their specificity, on the toy world."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.engine.features import contrastive_candidates
from harness.store import RunStore
from harness.studies.specificity import INACTIVE
from harness.studies.specificity_run import feature_contexts, max_activating_examples
from harness.toy.probes import GOLDEN_GATE
from harness.toy.world import eval_documents
from tests.conftest import REPO, run_spec

SPEC = REPO / "experiments" / "toy_specificity.py"


@pytest.mark.parametrize("name", ["relu-256", "topk-256"])
def test_contrastive_search_finds_a_golden_gate_topic_feature(toy_model, toy_saes, name) -> None:  # type: ignore[no-untyped-def]
    """Ground truth independent of the probe prompts: the features whose mean activation differs
    most between Golden Gate documents and the other documents of the held-out corpus."""
    sae = toy_saes[name]
    docs = eval_documents()
    tokens = toy_model.to_tokens(docs, padding_side="right")[:, :64]
    _, cache = toy_model.run_with_cache(tokens, names_filter=sae.hook_name)
    per_doc = sae.encode(cache[sae.hook_name])[:, 1:].mean(1)
    is_gg = torch.tensor(["golden gate" in d for d in docs])
    planted = set(torch.topk(per_doc[is_gg].mean(0) - per_doc[~is_gg].mean(0), 3).indices.tolist())
    found = [c.index for c in contrastive_candidates(toy_model, sae, GOLDEN_GATE)[:3]]
    assert planted & set(found), (planted, found)


def test_contexts_highlight_the_token_and_examples_are_distinct(toy_model, toy_saes) -> None:  # type: ignore[no-untyped-def]
    docs = ["the golden gate bridge spans the bay . fog rolls in from the ocean ."]
    contexts = feature_contexts(toy_model, toy_saes["relu-256"], docs, feature=9, window=2)
    assert [c.position for c in contexts] == list(range(1, 16))  # 15 words after BOS
    assert contexts[2].text == "the golden <<gate>> bridge spans"
    top = max_activating_examples(contexts * 3, k=4)
    assert len({c.text for c in top}) == 4
    assert top[0].activation == max(c.activation for c in contexts)


def test_specificity_rises_with_activation_and_the_top_bin_is_mostly_3s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = run_spec(SPEC)
    rows = store.read_json("summary.json")

    def metric(sae: str, name: str) -> dict[str, dict]:  # type: ignore[type-arg]
        return {r["condition"]: r for r in rows if r["sae"] == sae and r["metric"] == name}

    for sae in ("toy/relu-256", "toy/topk-256"):
        scores = metric(sae, "specificity_score")
        bins = [b for b in scores if b != INACTIVE]
        assert scores[INACTIVE]["value"] < scores[bins[0]]["value"] < scores[bins[-1]]["value"]
        assert all(r["n"] == 20 for r in scores.values())
    relu = metric("toy/relu-256", "specificity_score")
    values = [relu[b]["value"] for b in relu if b != INACTIVE]
    assert values == sorted(values)  # monotone on the ReLU SAE
    top_bin = list(relu)[-1]
    assert metric("toy/relu-256", "share_of_3s")[top_bin]["value"] >= 0.8

    [candidates] = [r for r in store.records("candidates") if r["sae"] == "toy/relu-256"]
    assert candidates["candidates"][0]["feature"] == 9
    report = next(Path("reports").glob("*.md")).read_text()
    assert "contrastive candidates" in report and "share of 3s" in report
    plots = list(Path("reports").glob("*-files/*.png"))
    assert len([p for p in plots if not p.name.startswith("sae-quality-")]) == 2

    n_records = len(list(store.records()))
    assert main(["run", str(SPEC), "--quiet", "--no-mlflow"]) == 0
    assert len(list(store.records())) == n_records  # a rerun redoes nothing


def test_without_a_description_the_feature_is_auto_interpreted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.judge.testing import FakeAnthropic

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "auto.py"
    spec.write_text(
        "from harness import *\nfrom harness.spec import *\n"
        "def spec():\n"
        "    return Experiment(name='auto', saes=(ToySAE(),), judge=JudgeSettings(kind='anthropic',"
        " extra_rubrics=()), studies=(Specificity(name='sp', feature=FeatureByIndex(index=9),"
        " n_per_bin=3),))\n"
    )
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    with FakeAnthropic() as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
        calls = fake.state.message_calls
        assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
        assert fake.state.message_calls == calls  # the description is stored, not re-asked
    store = RunStore.open("latest", Path("runs"))
    [desc] = list(store.records("description"))
    assert desc["source"].startswith("anthropic:") and desc["text"] == "the word 'gate'"
    assert {c["description"] for c in store.records("context")} == {"the word 'gate'"}


def test_a_contrastive_choice_reports_its_margin_and_stability() -> None:
    import numpy as np

    from harness.analysis.stats import choice_stability

    rng = np.random.default_rng(0)
    # a clear winner: first candidate far ahead on every prompt
    pos = np.array([[5.0, 5.1, 4.9, 5.2], [1.0, 1.1, 0.9, 1.0], [0.5, 0.4, 0.6, 0.5]])
    neg = np.zeros((3, 4))
    margin, stable = choice_stability(pos, neg, rng)
    assert margin.value == pytest.approx(4.0, abs=0.2) and margin.ci_low > 3 and stable == 1.0
    # two candidates that swap places prompt by prompt: unstable, the margin's CI spans 0
    pos = np.array([[3.0, 0.0, 3.0, 0.0, 2.0], [0.0, 3.0, 0.0, 3.0, 1.9]])
    margin, stable = choice_stability(pos, np.zeros((2, 5)), rng)
    assert margin.ci_low < 0 < margin.ci_high and 0.2 < stable < 0.9
