"""`harness compare` over the two shipped toy SAE checkpoints: the side-by-side table has every
metric with a CI, paired differences, matched features; its SAE-quality numbers equal
``sae_lens.evals``' own on the same tokens."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.engine.backend import load_sae
from harness.engine.sae_quality import QUALITY_METRICS, quality_values
from harness.spec import ToySAE
from harness.toy.world import eval_documents
from harness.views.notebook import load_run
from harness.views.report.quality import QUALITY_COLUMNS
from tests.test_regress import _checkpoint
from tests.test_sae_quality import sae_lens_metrics

pytestmark = pytest.mark.filterwarnings("ignore:.*(training dataset|not tokenized).*:UserWarning")

SPEC = """
from harness import Experiment, ToySAE
from harness.spec import (Ablation, Attribution, LogitDiff, SaturationClamp, Specificity)
from harness.toy.probes import GOLDEN_GATE, HAPPY_PROMPTS, NEUTRAL_PROMPTS, SAD, SAD_PROMPTS

def spec():
    return Experiment(
        name="ckpt_compare",
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        studies=(
            SaturationClamp(name="sweep", feature=GOLDEN_GATE, levels=(0, 2, 10),
                            prompts=NEUTRAL_PROMPTS[:6]),
            Ablation(name="sad_ablation", features=(SAD,), prompts=SAD_PROMPTS[:10],
                     control_prompts=HAPPY_PROMPTS[:4], tokens=("sad", "happy"),
                     metric=LogitDiff(positive="sad", negative="happy"), generate=False),
            Attribution(name="attribution", prompts=SAD_PROMPTS[:6],
                        metric=LogitDiff(positive="sad", negative="happy"), top_k=6),
            Specificity(name="specificity", feature=GOLDEN_GATE, bins=(0.0, 0.5),
                        n_per_bin=4, description="the Golden Gate Bridge"),
        ),
    )
"""

ESTIMATE = r"-?\d+\.\d+ \[-?\d+\.\d+, -?\d+\.\d+\] \(n=\d+\)"


def _table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the first table under a ``## heading``."""
    heading = heading.replace("_", "\\_")  # headings are escaped like table cells
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[c.strip() for c in row.strip("|").split(" | ")] for row in rows]


def test_compare_two_toy_checkpoints(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    toy_model: Any,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.py").write_text(SPEC)
    assert main(["compare", "spec.py", "--runs", "runs", "--no-mlflow", "--quiet"]) == 0
    out = capsys.readouterr().out
    path = Path(re.search(r"\): (\S+compare-\w+\.md)", out).group(1))  # type: ignore[union-attr]
    text = path.read_text()
    assert "Reference: **toy/relu-256**" in text

    # SAE quality: every metric, both checkpoints with CIs, the paired difference with a CI
    quality = {r[0].replace("\\", ""): r[1:] for r in _table(text, "SAE quality")}
    assert set(quality) == set(QUALITY_METRICS)
    for metric, cells in quality.items():
        if metric == "dead_fraction":  # a count over the sample: no CI
            assert all(re.fullmatch(r"\d\.\d{3} \(n=64\)", c.split(" **")[0]) for c in cells)
            continue
        assert re.match(ESTIMATE, cells[0]) and re.match(ESTIMATE, cells[1]), metric
        assert re.match(ESTIMATE, cells[2]), metric
    assert quality["explained_variance"][2].endswith("**worse**")  # top-k reconstructs less

    # …and those numbers are sae_lens.evals' own on the same 64 sequences (8 batches of 8)
    run = load_run("latest", "runs")
    records = run.quality_records()
    docs = eval_documents()
    for position, name in enumerate(("relu-256", "topk-256")):
        sae = load_sae(ToySAE(name=name), f"toy/{name}")
        theirs = sae_lens_metrics(toy_model, sae, docs, n_batches=8)
        ours = quality_values(records[position])
        for metric, _, digits in QUALITY_COLUMNS:
            assert ours[metric] == pytest.approx(theirs[metric], rel=1e-5, abs=1e-6), metric
            shown = float(quality[metric][position].split(" ")[0])
            assert shown == pytest.approx(theirs[metric], abs=10**-digits), metric

    # each study's headlines per checkpoint, with the difference's CI
    sweep = _table(text, "sweep")
    assert {(r[0], r[1].replace("\\", "")) for r in sweep} >= {
        ("2x", "concept_score"),
        ("10x", "concept_score"),
        ("10x", "fluency_score"),
    }
    for row in sweep:
        assert all(re.match(ESTIMATE, c) for c in row[2:5]), row
    # verdict words mean what they say, over every table of the output: a control's own
    # score is never better/worse, and no verdict stands on a CI that touches 0 as shown
    from harness.studies.controls import parse_control

    verdicts = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if not line.startswith("|") or len(cells) < 3:
            continue
        for c in cells:
            word = re.search(r"\*\*(better|worse|higher|lower)\*\*", c)
            if word is None:
                continue
            verdicts += 1
            if parse_control(cells[0].replace("\\", "")) is not None:
                assert word.group(1) in ("higher", "lower"), line
            ci = re.search(r"\[(-?[\d.,]+), (-?[\d.,]+)\]", c)
            if ci is not None:
                low, high = (float(x.replace(",", "")) for x in ci.groups())
                assert low > 0 or high < 0, line
    assert verdicts > 0
    # one CI per quantity: each checkpoint's cell is the interval its run stored (the report's
    # and MLflow's), not a second resample
    s = run.summary
    for row in sweep:
        for sae, shown in zip(("toy/relu-256", "toy/topk-256"), row[2:4], strict=True):
            cond, metric = row[0].replace("\\", ""), row[1].replace("\\", "")
            [stored] = s[
                (s.sae == sae) & (s.study == "sweep") & (s.metric == metric) & (s.condition == cond)
            ].to_dict("records")
            value, low, high = (float(x) for x in re.findall(r"-?\d+\.\d+", shown)[:3])
            digits = len(shown.split(" ")[0].split(".")[1])
            for got, want in ((value, "value"), (low, "ci_low"), (high, "ci_high")):
                assert got == pytest.approx(stored[want], abs=0.6 * 10**-digits), (row, want)
    ablation = {r[1].replace("\\", ""): r for r in _table(text, "sad_ablation")}
    assert {"metric_shift", "top1_changed", "kl_mean"} <= set(ablation)
    assert re.match(ESTIMATE, ablation["metric_shift"][4])
    spec_rows = _table(text, "specificity")
    assert spec_rows and all(re.match(ESTIMATE, r[4]) for r in spec_rows)
    attribution = {r[1]: r for r in _table(text, "attribution")}
    assert re.match(ESTIMATE, attribution["spearman"][2])

    # features matched: each checkpoint's feature and decoder cosines
    matched = {
        r[0].replace("\\", ""): r for r in _table(text, "Features matched across checkpoints")
    }
    assert set(matched) >= {"sweep", "sad_ablation", "specificity"}
    assert re.fullmatch(r"\d+ \(Golden Gate Bridge\) \(-?\d\.\d\d\)", matched["sweep"][2])
    assert re.fullmatch(r"\d+ \(-?\d\.\d\d\)", matched["sweep"][3])


def test_compare_over_checkpoints_given_on_the_command_line_and_stored_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    noisy = _checkpoint(tmp_path / "ckpt", "noisy", 1.0)
    (tmp_path / "spec.py").write_text(
        "from harness import Experiment, ToySAE, SaturationClamp\n"
        "from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS\n"
        "def spec():\n"
        "    return Experiment(name='one', saes=(ToySAE(name='relu-256'),),\n"
        "        studies=(SaturationClamp(name='sweep', feature=GOLDEN_GATE, levels=(0, 10),\n"
        "            prompts=NEUTRAL_PROMPTS[:4]),))\n"
    )
    args = ["--runs", "runs", "--no-mlflow", "--quiet"]
    # one checkpoint is not a comparison: refused before anything runs
    assert main(["compare", "spec.py", *args]) == 2
    assert "at least two SAE checkpoints" in capsys.readouterr().err
    assert not Path("runs").exists()
    assert main(["compare", "spec.py", "--sae", "bogus", *args]) == 2
    assert (
        main(["compare", "spec.py", "--sae", "toy:relu-256", "--sae", f"local:{noisy}", *args]) == 0
    )
    out = capsys.readouterr().out
    assert "noisy sae_quality all explained_variance: -0.2" in out  # 1× noise costs ~0.28 EV
    # checkpoints from two stored runs: a label in both gets its run id appended
    assert main(["run", "spec.py", "--runs", "runs", "--no-mlflow", "--quiet"]) == 0
    run_ids = sorted(p.name for p in Path("runs").iterdir() if p.is_dir())
    assert main(["compare", *run_ids, *args]) == 0
    text = Path(re.search(r"\): (\S+\.md)", capsys.readouterr().out).group(1)).read_text()  # type: ignore[union-attr]
    assert f"toy/relu-256 ({run_ids[0]})" in text and f"toy/relu-256 ({run_ids[1]})" in text


def test_verdict_words_mean_what_they_say() -> None:
    """No verdict when the CI touches 0 at the precision shown; a control's own score moving
    is higher/lower, never better/worse (the feature − control rows are the headline)."""
    from harness.analysis.compare_rows import ComparisonRow, verdict
    from harness.analysis.stats import Estimate

    def row(condition: str) -> ComparisonRow:
        return ComparisonRow("sweep", condition, "concept_score", [], [], "prompts", True)

    touching = Estimate(-0.003, -0.005, -0.0004, 40)  # shown as [-0.005, -0.000] at 3 digits
    assert verdict(row("10x"), touching, digits=3) == ""
    assert verdict(row("10x"), touching, digits=4) == "worse"  # clear of 0 at 4 digits
    up = Estimate(0.25, 0.1, 0.4, 40)
    assert verdict(row("10x"), up) == "better"
    assert verdict(row("random_feature#1@10x"), up) == "higher"
    assert verdict(row("prompt_only"), Estimate(-0.25, -0.4, -0.1, 40)) == "lower"
