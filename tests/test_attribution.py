"""Attribution (gradient × activation, error term fixed) against exact ablations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformer_lens.hook_points import HookedRootModule, HookPoint

from harness.engine.backend import LoadedSAE
from harness.spec import LogitDiff
from harness.studies.attribution_run import ablate, attribute, metric_fn
from tests.conftest import REPO, run_spec

SPEC = REPO / "experiments" / "toy_attribution.py"


class _LinearReadout(HookedRootModule):
    """A real TransformerLens hooked module whose 'logits' are linear in the hooked activation."""

    def __init__(self, x: torch.Tensor, w: torch.Tensor) -> None:
        super().__init__()
        self.x, self.w = x, w
        self.hook_act = HookPoint()
        self.setup()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hook_act(self.x) @ self.w


def test_attribution_equals_ablation_exactly_when_the_metric_is_linear(toy_saes) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    sae = toy_saes["relu-256"].sae
    x = torch.randn(3, 5, 64) * 3
    model = _LinearReadout(x, torch.randn(64, 2))
    loaded = LoadedSAE("relu", sae, "hook_act")
    tokens = torch.zeros(3, 5, dtype=torch.long)
    mask = torch.ones(3, 5, dtype=torch.bool)

    def metric(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return logits[:, -1, 0] - logits[:, -1, 1] + 0.5 * logits[:, 2, 1]

    base, f, attribution = attribute(model, loaded, tokens, metric, mask)  # type: ignore[arg-type]
    per_feature = attribution.sum(1)
    active = (f > 0).any(1).any(0).nonzero()[:, 0][:10].tolist()
    assert len(active) == 10
    for i in active:
        exact = ablate(model, loaded, tokens, metric, i, mask) - base  # type: ignore[arg-type]
        assert torch.allclose(per_feature[:, i], exact, atol=1e-4), i


def test_gradient_matches_finite_differences(toy_model, toy_saes) -> None:  # type: ignore[no-untyped-def]
    sae = toy_saes["relu-256"]
    tokens = toy_model.to_tokens(["john says , i lost my best friend . john feels"])
    metric = metric_fn(toy_model, LogitDiff(positive="sad", negative="happy"), "m")
    mask = tokens > 1
    _base, f, attribution = attribute(toy_model, sae, tokens, metric, mask)
    pos, feats = -1, (f[0, -1] > 0).nonzero()[:3, 0].tolist()
    eps = 1e-2
    for i in feats:

        def run(delta: float, i: int = i) -> float:
            def hook(act, hook, delta=delta, i=i):  # type: ignore[no-untyped-def]
                f0 = sae.encode(act)
                error = act - sae.decode(f0)
                moved = f0.clone()
                moved[0, pos, i] += delta
                return sae.decode(moved) + error

            with torch.no_grad():
                logits = toy_model.run_with_hooks(tokens, fwd_hooks=[(sae.hook_name, hook)])
            return float(metric(logits, tokens)[0])

        numeric = (run(eps) - run(-eps)) / (2 * eps)
        analytic = float(attribution[0, pos, i] / (0 - f[0, pos, i]))
        assert analytic == pytest.approx(numeric, rel=2e-2, abs=1e-3), i


def test_toy_attribution_agrees_with_ablation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = run_spec(SPEC)
    for rec in store.records("attribution"):
        features = rec["features"]
        strongest = max(features, key=lambda f: abs(f["ablation"]))
        by_attribution = sorted(features, key=lambda f: -abs(f["attribution"]))
        assert strongest in by_attribution[:3], rec["sae"]
        spearman = rec["agreement"]["spearman"]
        assert (
            spearman["value"] >= 0.7
            and spearman["ci_low"] <= spearman["value"] <= spearman["ci_high"]
        )
        assert spearman["n"] == 20
        last = rec["by_position"][0]
        assert last["position"] == -1 and len(last["features"]) == 5
    rows = [
        r
        for r in store.read_json("summary.json")
        if r["metric"] == "spearman" and r["condition"].startswith("top")
    ]
    assert len(rows) == 2
    # judged on features chosen without attribution (all 256 of each toy SAE), each ablated:
    # attribution finds most of the true strongest, and the recall comes with a CI
    recall = [r for r in store.read_json("summary.json") if r["metric"] == "recall_at_20"]
    assert [r["condition"] for r in recall] == ["sample256", "sample256"]
    for r in recall:
        assert 0.5 <= r["value"] <= 1 and r["ci_low"] <= r["value"] <= r["ci_high"]
    for rec in store.records("attribution"):
        assert rec["sample"]["features"] == list(range(256))
        top = {f["feature"]: f["ablation"] for f in rec["features"]}
        abl = np.array(rec["sample"]["ablation"]).mean(0)
        for f, effect in top.items():  # the top-k ablations are the same numbers in the sample
            assert abl[f] == pytest.approx(effect, abs=1e-6)
    # the summary recomputes every CI from the stored per-prompt values: the same numbers
    for rec in store.records("attribution"):
        [row] = [r for r in rows if r["sae"] == rec["sae"]]
        stored = rec["agreement"]["spearman"]
        assert (row["value"], row["ci_low"], row["ci_high"], row["n"]) == (
            stored["value"],
            stored["ci_low"],
            stored["ci_high"],
            stored["n"],
        )
        assert len(rec["per_prompt"]["attribution"]) == 20
    report = next(Path("reports").glob("*.md")).read_text()
    assert "attribution vs ablation" in report and "position −1 is the last token" in report
    plots = list(Path("reports").glob("*-files/*.png"))
    assert len([p for p in plots if not p.name.startswith("sae-quality-")]) == 2


def test_the_independent_sample_mixes_the_most_active_and_seeded_random_features() -> None:
    import torch

    from harness.studies.attribution_run import independent_sample

    acts = torch.arange(1000, dtype=torch.float32)  # feature i has mean activation i
    chosen, how = independent_sample(1000, 256, acts, seed=3)
    assert len(chosen) == len(set(chosen)) == 256 and chosen == sorted(chosen)
    assert set(range(1000 - 64, 1000)) <= set(chosen)  # the 64 most active
    assert chosen == independent_sample(1000, 256, acts, seed=3)[0]
    assert chosen != independent_sample(1000, 256, acts, seed=4)[0]
    assert "64 most active" in how
    assert independent_sample(100, 256, acts[:100], seed=3)[0] == list(range(100))
