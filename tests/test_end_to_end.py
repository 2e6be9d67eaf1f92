"""The demo experiment through the real CLI, a real local MLflow store and the run store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

import harness.studies.common as saturation
from harness.cli import main
from harness.execute.plan import plan
from harness.store import RunStore
from tests.conftest import REPO, run_spec

DEMO = REPO / "experiments" / "toy_golden_gate.py"


def _row(
    rows: list[dict],  # type: ignore[type-arg]
    condition: str,
    metric: str = "concept_score",
    study: str = "golden_gate_sweep",
) -> dict:  # type: ignore[type-arg]
    [row] = [
        r
        for r in rows
        if r["study"] == study and r["condition"] == condition and r["metric"] == metric
    ]
    return row


def test_demo_run_writes_report_mlflow_run_and_resumes(
    tmp_path: Path,
    mlflow_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(DEMO), "--quiet"]) == 0
    store = RunStore.open("latest", Path("runs"))
    report = Path("reports") / f"{store.run_id}.md"
    text = report.read_text()
    assert "## Provenance" in text and "### Dose–response" in text and "offline-semantic-v1" in text

    rows = store.read_json("summary.json")
    base, top = _row(rows, "baseline"), _row(rows, "10x")
    assert base["n"] == top["n"] == 16
    assert base["value"] <= 0.5 and top["value"] >= 2.0
    assert top["ci_low"] <= top["value"] <= top["ci_high"]
    # clamp specificity: clamping to 0 leaves neutral prompts alone, 10x does not
    neutral_0, neutral_10 = _row(rows, "neutral:0x", "drift"), _row(rows, "neutral:10x", "drift")
    assert neutral_0["n"] == neutral_10["n"] == 8
    assert neutral_0["value"] < 0.1 * neutral_10["value"]
    # fluency falls at the extreme levels, by the judge and by perplexity under the clean model
    assert (
        _row(rows, "10x", "fluency_score")["value"]
        < _row(rows, "baseline", "fluency_score")["value"]
    )
    assert (
        _row(rows, "10x", "perplexity")["ci_low"] > _row(rows, "baseline", "perplexity")["ci_high"]
    )
    assert _row(rows, "10x", "concept_p_holm")["value"] < 0.05
    assert _row(rows, "trend", "trend_p")["value"] < 0.05
    level = _row(rows, "recommended", "level")["value"]
    assert (
        level in (0, 1, 2, 5, 10) and _row(rows, "recommended", "concept_score_heldout")["n"] == 8
    )
    for r in rows:  # every aggregate carries n, and its CI brackets it
        assert r["n"] >= 0
        if r["ci_low"] == r["ci_low"] and r["n"] > 0:
            assert r["ci_low"] - 1e-9 <= r["value"] <= r["ci_high"] + 1e-9, r

    runs = mlflow.search_runs(experiment_names=["toy_golden_gate"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4  # 3 studies + SAE quality
    # the sweep's dose–response is a metric history: one step per level, MLflow draws a curve
    [sweep] = [c for c in children if c.data.tags.get("study") == "golden_gate_sweep"]
    history = mlflow.MlflowClient().get_metric_history(sweep.info.run_id, "dose/concept_score")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1, 2, 5, 10]
    by_step = {m.step: m.value for m in history}
    assert by_step[10] == _row(rows, "10x")["value"] and by_step[0] == _row(rows, "0x")["value"]
    assert sweep.data.tags["dose_step"] == "level in × max"
    low = mlflow.MlflowClient().get_metric_history(sweep.info.run_id, "dose/concept_score.ci_low")
    assert {m.step: m.value for m in low}[2] == _row(rows, "2x")["ci_low"]  # CIs as series
    # the sweep's report plot and the SAE-quality pictures are artifacts of the parent
    files = mlflow.MlflowClient().list_artifacts(
        parents[0].info.run_id, f"report/{store.run_id}-files"
    )
    names = {Path(f.path).name for f in files}
    assert "sae-quality-firing-frequency.png" in names and "sae-quality-l0-per-token.png" in names
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["name"] == "toy_golden_gate"
    assert parent.data.tags["harness.judge"] == "offline-semantic-v1"
    assert parent.data.tags["harness.spec_hash"] == store.experiment().spec_hash()
    [sweep] = [c for c in children if c.data.tags.get("study") == "golden_gate_sweep"]
    assert sweep.data.metrics["concept_score/10x"] == pytest.approx(top["value"])
    assert sweep.data.metrics["concept_score/baseline.n"] == 16
    # a bounded run page: headline metrics and the dose curve as keys, every row as one table
    sweep_rows = [r for r in rows if r["study"] == "golden_gate_sweep"]
    assert len(sweep_rows) > 300
    for child in children:
        assert len(child.data.metrics) <= 200, child.data.tags["study"]
    for key in ("fluency_score/10x", "drift/5x", "concept_vs_random_feature/10x"):
        assert key in sweep.data.metrics
    assert "concept_score/wrong_sign_10x" not in sweep.data.metrics  # a control's own score
    table = mlflow.artifacts.load_text(f"runs:/{sweep.info.run_id}/summary/rows.csv")
    assert len(table.strip().splitlines()) == len(sweep_rows) + 1
    assert "of" in sweep.data.tags["harness.metrics"]
    assert parent.info.run_name.startswith("run 20") and store.run_id in parent.info.run_name
    [quality] = [c for c in children if c.data.tags.get("study") == "sae_quality"]
    ev = quality.data.metrics
    assert ev["explained_variance/all.ci_low"] < ev["explained_variance/all"] < 1
    assert ev["explained_variance/all.n"] == 64
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "report")}
    assert f"report/{report.name}" in artifacts

    # a second run of the same spec redoes nothing
    n_records = len(list(store.records()))
    assert main(["run", str(DEMO), "--quiet"]) == 0
    assert len(list(store.records())) == n_records

    capsys.readouterr()
    assert main(["show", "latest", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown[0]) == {
        "sae",
        "study",
        "condition",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n",
    }


def test_interrupted_run_is_killed_in_mlflow_and_resumes_without_redoing_work(
    tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    real = saturation.generate_rows
    calls: list[int] = []

    def interrupt_second_batch(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(saturation, "generate_rows", interrupt_second_batch)
    assert main(["run", str(DEMO), "--quiet", "--batch-size", "32"]) == 130
    [run] = mlflow.search_runs(experiment_names=["toy_golden_gate"], output_format="list")
    assert run.info.status == "KILLED"
    store = RunStore.open("latest-any", Path("runs"))
    assert len(store.done_keys("generation")) == 32

    monkeypatch.setattr(saturation, "generate_rows", real)
    generated: list[int] = []
    monkeypatch.setattr(
        saturation, "generate_rows", lambda *a, **k: generated.append(len(a[1])) or real(*a, **k)
    )
    assert main(["run", str(DEMO), "--quiet", "--batch-size", "32"]) == 0
    # sweep 24×6, its controls 16 target prompts × 4 non-zero levels × 5 (2 random features, a
    # random direction, the wrong sign, additive) + 16 prompt-only; ablation 16×2 + 8×2 random-
    # feature controls; amplify 24×2 + 16×2
    total = len(plan(store.experiment()).items)
    assert total == 144 + 16 * 4 * 5 + 16 + 32 + 16 + 48 + 32 == 608
    assert sum(generated) == total - 32  # only the unfinished rows were generated
    assert len(store.done_keys("generation")) == total
    keys = [r["key"] for r in store.records("generation")]
    assert len(keys) == len(set(keys))


def test_feature_index_out_of_range_fails_before_any_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "big.py"
    path.write_text(
        "from harness import *\n"
        "def spec():\n"
        "    return Experiment(name='x', saes=(ToySAE(),), studies=(SaturationClamp(name='s',"
        " feature=FeatureByIndex(index=999, keywords=('a',)), levels=(1,), prompts=('p',)),))\n"
    )
    monkeypatch.setattr(saturation, "generate_rows", lambda *a, **k: pytest.fail("generated"))
    assert main(["run", str(path), "--quiet", "--no-mlflow"]) == 2
    err = capsys.readouterr().err
    assert "studies.0.feature.index: feature index 999 is out of range" in err
    assert "valid: 0..255" in err


def test_rescore_judges_only_what_is_missing_and_never_regenerates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    store = run_spec(DEMO)
    summary = store.read_json("summary.json")
    # drop a third of the judgements, as if the judge had been down for them
    lines = store.records_path.read_text().splitlines(keepends=True)
    judged = [i for i, line in enumerate(lines) if '"kind": "judgement"' in line]
    dropped = set(judged[::3])
    store.records_path.write_text("".join(line for i, line in enumerate(lines) if i not in dropped))
    monkeypatch.setattr(saturation, "generate_rows", lambda *a, **k: pytest.fail("generated"))
    capsys.readouterr()
    assert main(["rescore", "latest"]) == 0
    assert capsys.readouterr().out.startswith(f"{len(dropped)} new judgements")
    assert store.read_json("summary.json") == summary
    assert main(["rescore", "latest"]) == 0
    assert capsys.readouterr().out.startswith("0 new judgements")


def test_plan_prints_the_matrix_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(DEMO), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = data["rows"][0]
    assert row["study"] == "golden_gate_sweep" and row["conditions"] == 6
    assert row["controls"] == 4 * 5 + 1  # 5 controls at each non-zero level, and prompt-only
    # the sweep's rows and its controls (16 target prompts × 4 levels × 5, + 16 prompt-only)
    assert row["generations"] == (16 + 8) * 6 + 336 and row["judge_calls"] == 480 * 3  # 3 rubrics
    # ceil(480 / 64) batches × (24 new tokens + 2 teacher-forced passes)
    assert row["forward_passes"] == 8 * 24 + 2 * 8
    assert data["totals"]["generations"] == 480 + 48 + 80 and data["judge_cost_usd"] == 0.0
    assert main(["plan", str(DEMO)]) == 0
    assert "estimated judge cost $0.00" in capsys.readouterr().out


def test_absolute_levels_and_ablation_without_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    header = "from harness import *\nfrom harness.spec import *\n"
    sweep = (
        "SaturationClamp(name='s', feature=FeatureByIndex(index=9, label='bridge',"
        " keywords=('bridge', 'fog')), levels=(0.0, 30.0), level_unit='absolute',"
        " prompts=('the weather today is', 'fans filled the'))"
    )
    good = tmp_path / "absolute.py"
    good.write_text(
        f"{header}def spec():\n    return Experiment(name='abs', saes=(ToySAE(),),"
        f" studies=({sweep},))\n"
    )
    store = run_spec(good)
    rows = store.read_json("summary.json")
    assert (
        _row(rows, "v=30", study="s")["value"] >= 2 and _row(rows, "v=0", study="s")["value"] == 0
    )
    [feature] = list(store.records("feature"))
    # statistics are reported for every intervened feature, but absolute levels ignore them
    assert feature["max_activation_source"].startswith("toy held-out corpus")
    sweep_values = {g["clamp_value"] for g in store.records("generation") if g["feature"] == 9}
    assert sweep_values == {None, 0.0, 30.0, -30.0}  # -30: the wrong-sign control
    assert "Feature **9** (bridge)." in (Path("reports") / f"{store.run_id}.md").read_text()

    # an ablation needs concept keywords to judge its continuations offline, or generate=False
    ablation = (
        "Ablation(name='a', features=(FeatureByIndex(index=9),), prompts=('fans filled the',))"
    )
    bad = tmp_path / "ablation.py"
    bad.write_text(
        f"{header}def spec():\n    return Experiment(name='abl', saes=(ToySAE(),),"
        f" studies=({ablation},))\n"
    )
    capsys.readouterr()
    assert main(["validate", str(bad)]) == 2
    assert "studies.0.features.0.keywords: the offline judge needs concept keywords" in (
        capsys.readouterr().err
    )
    bad.write_text(bad.read_text().replace("prompts=", "generate=False, prompts="))
    store = run_spec(bad)
    assert not list(store.records("generation"))
    effects = list(store.records("next_token"))
    [effect] = [r for r in effects if r["condition"] == "zero"]
    assert effect["base_top"] == "stadium"
    # its random-feature controls' next-token effects are measured without generation too
    assert sorted(r["condition"] for r in effects if r is not effect) == [
        "random_feature#1@zero",
        "random_feature#2@zero",
    ]
