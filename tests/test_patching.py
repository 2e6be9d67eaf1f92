"""Activation patching, a study kind added through the registry alone: the oracle (patching every
position restores the whole difference), the toy's known answer (the last position carries it;
the "sad" feature alone a part), compare and regress over it, and its checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.store import RunStore

# same-length pairs (11 tokens after BOS each), so every position can be patched
PAIRS = (
    (
        "john says , i lost my best friend . john feels",
        "john says , i just won the prize . john feels",
    ),
    (
        "john says , nobody came to my party . john feels",
        "john says , today was a wonderful day . john feels",
    ),
)

SPEC = """
from harness import Experiment, ToySAE
from harness.spec import ActivationPatching, LogitDiff
from harness.toy.probes import SAD

SOURCES = {sources!r}
TARGETS = {targets!r}

def spec():
    metric = LogitDiff(positive="sad", negative="happy")
    return Experiment(
        name="patch_test",
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        sae_quality=None,
        studies=(
            ActivationPatching(name="residual", sources=SOURCES, targets=TARGETS, metric=metric,
                               positions={positions}),
            ActivationPatching(name="feature", sources=SOURCES, targets=TARGETS, metric=metric,
                               what="features", features=(SAD,), rank_features=True),
        ),
    )
"""


def _write(tmp_path: Path, positions: int = 11, pairs=PAIRS) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "patch.py"
    sources, targets = (tuple(p[i] for p in pairs) for i in (0, 1))
    path.write_text(SPEC.format(sources=sources, targets=targets, positions=positions))
    return path


def test_patching_restores_what_the_activation_carries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _write(tmp_path)
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    store = RunStore.open("latest", Path("runs"))
    patches = list(store.records("patch"))
    every = [r for r in patches if r["condition"] == "residual@last11"]
    assert len(every) == 4  # 2 pairs × 2 SAEs
    for r in every:  # oracle: the whole activation at every position is the source's run
        assert r["metric_patched"] == pytest.approx(r["metric_source"], abs=1e-4)
        assert r["restored"] == pytest.approx(1.0, abs=1e-4)
    last = [r["restored"] for r in patches if r["condition"] == "residual@-1"]
    assert min(last) > 0.9  # the toy carries "sad" at the last position of this hook
    feature = [r for r in patches if r["study"] == "feature"]
    assert all(r["metric_patched"] > r["metric_target"] for r in feature)  # moves toward "sad"
    assert all(0 < r["restored"] < 1 for r in feature)
    rows = store.read_json("summary.json")
    frac = [r for r in rows if r["metric"] == "fraction_restored" and r["study"] == "feature"]
    assert len(frac) == 2 and all(r["n"] == 2 for r in frac)
    report = next(Path("reports").glob("patch_test-*.md")).read_text()
    assert "activation patching" in report and "residual@-1" in report

    # the three-way ranking: every feature of each toy SAE, per pair; its patching effect of the
    # studied feature is the "features" patch itself (same clamp, same position)
    rankings = {r["sae"]: r for r in store.records("patch_ranking")}
    assert sorted(rankings) == ["toy/relu-256", "toy/topk-256"]
    for r in feature:
        rec = rankings[r["sae"]]
        assert rec["features"] == list(range(256))
        shifts = rec["per_pair"]["patching"][r["prompt_index"]]
        expected = r["metric_patched"] - r["metric_target"]
        assert shifts[_sad(store, r["sae"])] == pytest.approx(expected, abs=1e-4)
    spearman = [r for r in rows if r["condition"] == "ranking"]
    assert {r["metric"] for r in spearman} == {
        "spearman_attribution_vs_ablation",
        "spearman_attribution_vs_patching",
        "spearman_ablation_vs_patching",
        "spearman_attribution_patching_vs_patching",
    }
    assert "### Features ranked three ways" in report

    # compare and regress read it through the kind's metrics
    assert main(["compare", str(store.dir)]) == 0
    comparison = next(Path("reports").glob("compare-*.md")).read_text()
    assert "fraction\\_restored" in comparison
    assert main(["accept", str(store.dir)]) == 0
    assert main(["regress", str(store.dir)]) == 0
    capsys.readouterr()
    # resume: nothing redone
    n = len(store.records_path.read_text().splitlines())
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    assert len(RunStore(store.dir).records_path.read_text().splitlines()) == n


def _sad(store: RunStore, sae: str) -> int:
    """The index of the feature the 'feature' study patched on ``sae``."""
    from harness.engine.backend import load_model, load_sae
    from harness.engine.features import resolve_feature
    from harness.spec import ToyModel, ToySAE
    from harness.toy.probes import SAD

    model = load_model(ToyModel(), "cpu")
    loaded = load_sae(ToySAE(name=sae.split("/")[1]), sae, "cpu")
    return resolve_feature(model, loaded, SAD, "f", {sae: loaded})[0]


def test_patching_checks_its_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.spec import ActivationPatching, LogitDiff

    metric = LogitDiff(positive="sad", negative="happy")
    with pytest.raises(ValueError, match="paired by position"):
        ActivationPatching(name="p", sources=("a b", "c d"), targets=("e f",), metric=metric)
    with pytest.raises(ValueError, match="needs features"):
        ActivationPatching(name="p", sources=("a",), targets=("b",), metric=metric, what="features")
    # more positions than a prompt has: one line, exit 2, before anything is patched
    spec = _write(tmp_path, positions=40)
    assert main(["run", str(spec), "--quiet", "--no-mlflow", "--runs", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "studies.0.positions" in err
    assert not list((tmp_path / "r").glob("*/records.jsonl")) or not any(
        json.loads(line)["kind"] == "patch"
        for p in (tmp_path / "r").glob("*/records.jsonl")
        for line in p.read_text().splitlines()
    )
