"""Verdicts with guards: no recommended level that does not steer, no better/worse on a handful
of items or on the offline keyword judge alone, no baseline from another experiment, and
``latest`` is the newest finished run, ``latest-any`` the newest started."""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path

import pytest

from harness.analysis.compare_rows import MIN_N, ComparisonRow, verdict
from harness.analysis.effects import recommended_rows
from harness.analysis.stats import Estimate
from harness.cli import main
from harness.store import RunStore


def test_the_recommended_level_is_never_one_that_does_not_steer() -> None:
    prompts = range(8)
    concept = {
        ("s", "t", "baseline"): dict.fromkeys(prompts, 0),
        ("s", "t", "0x"): dict.fromkeys(prompts, 0),  # fluent, but no concept: not steering
        ("s", "t", "5x"): dict.fromkeys(prompts, 3),
    }
    fluency = {
        ("s", "t", "0x"): dict.fromkeys(prompts, 2),
        ("s", "t", "5x"): dict.fromkeys(prompts, 0),  # steers, but no longer fluent
    }
    rows = recommended_rows("s", "t", (0.0, 5.0), 1.0, ["0x", "5x"], concept, fluency, seed=0)
    [level] = [r for r in rows if r["metric"] == "level"]
    assert math.isnan(level["value"])
    # a level that steers and stays fluent is recommended
    concept[("s", "t", "2x")] = dict.fromkeys(prompts, 2)
    fluency[("s", "t", "2x")] = dict.fromkeys(prompts, 2)
    rows = recommended_rows(
        "s", "t", (0.0, 2.0, 5.0), 1.0, ["0x", "2x", "5x"], concept, fluency, seed=0
    )
    assert [r["value"] for r in rows if r["metric"] == "level"] == [2.0]


def _row(
    n: int, offline: bool = False, better: bool | None = True
) -> tuple[ComparisonRow, Estimate]:
    d = Estimate(-1.65, -2.5, -0.81, n)
    row = ComparisonRow("s", "2x", "concept_score", [d, d], [d], "prompts", better, offline)
    return row, d


def test_a_difference_on_few_items_or_the_offline_judge_alone_is_inconclusive() -> None:
    assert verdict(*_row(2)) == f"inconclusive (n=2 < {MIN_N})"
    assert verdict(*_row(16, offline=True)) == "inconclusive (offline keyword judge only)"
    assert verdict(*_row(16)) == "worse"
    assert verdict(*_row(16, better=None)) == "lower"
    assert verdict(_row(16)[0], Estimate(0.1, -0.2, 0.4, 16)) == ""


SPEC = """
from harness import Experiment, FeatureByIndex, SaturationClamp, ToySAE

def spec():
    return Experiment(name={name!r}, saes=(ToySAE(),), sae_quality=None, studies=(SaturationClamp(
        name="s", feature=FeatureByIndex(index=9, keywords=("bridge",)), levels=(0, 5),
        prompts=("the chef added salt to the", "a cold wind blows and the")),))
"""


def test_regress_refuses_another_experiment_and_says_how_to_accept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("alpha", "beta"):
        (tmp_path / f"{name}.py").write_text(SPEC.format(name=name))
        assert main(["run", f"{name}.py", "--quiet", "--no-mlflow"]) == 0
    alpha = next(Path("runs").glob("alpha-*"))
    beta = next(Path("runs").glob("beta-*"))
    capsys.readouterr()
    assert main(["regress", str(alpha)]) == 2  # nothing accepted yet
    assert "harness accept" in capsys.readouterr().err
    assert main(["accept", str(beta)]) == 0
    assert main(["regress", str(alpha), "--baseline", str(beta)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "of experiment 'beta', not 'alpha'" in err
    assert main(["regress", str(alpha), "--baseline", str(alpha)]) == 0
    out = capsys.readouterr().out
    assert "the baseline is this run itself" in out
    assert (Path("reports") / f"{alpha.name}-vs-{alpha.name}-regression.md").is_file()


def test_latest_is_the_newest_finished_run_and_latest_any_the_newest_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("first", "second"):
        (tmp_path / f"{name}.py").write_text(SPEC.format(name=name))
        assert main(["run", f"{name}.py", "--quiet", "--no-mlflow"]) == 0
    runs = Path("runs")
    assert RunStore.open("latest", runs).run_id.startswith("second-")
    time.sleep(0.01)
    assert main(["run", "first.py", "--quiet", "--no-mlflow"]) == 0  # a resume is a start
    latest = RunStore.open("latest", runs)
    assert latest.run_id.startswith("first-")
    assert json.loads((latest.dir / "status.json").read_text())["started"] > 0
    # `first` is started again and its process dies (status running, lock free: killed)
    latest.write_status({"status": "running", "started": time.time() + 1, "pid": 1})
    assert latest.status()["status"] == "killed"
    assert RunStore.open("latest", runs).run_id.startswith("second-")
    assert RunStore.open("latest-any", runs).run_id.startswith("first-")
    assert main(["show", "latest", "--json"]) == 0
    assert "second" in capsys.readouterr().out
    # a nightly run counts too
    night = runs / "nightly" / "20261207-000000"
    night.mkdir(parents=True)
    moved = RunStore.open("latest-any", runs).dir.rename(night / latest.dir.name)
    RunStore(moved).write_status({"status": "finished", "started": time.time() + 2})
    assert RunStore.open("latest", runs).dir == moved
    # no finished run at all: one line naming the newest and its status, and latest-any
    for d in [moved, *runs.glob("*/spec.json")]:
        run_dir = d if d.is_dir() else d.parent
        RunStore(run_dir).write_status({"status": "failed", "started": time.time()})
    assert main(["show", "latest"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no finished run" in err[0] and "'latest-any'" in err[0], err


def _worsen(run: Path, condition: str) -> None:
    """Set every concept judgement of ``condition`` in a stored run to 0."""
    lines = []
    for line in (run / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        if (
            r["kind"] == "judgement"
            and r["condition"] == condition
            and r["rubric"].startswith("concept_presence@")
        ):
            r["score"], r["unscored_reason"] = 0, None
        lines.append(json.dumps(r))
    (run / "records.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("prompts", "judge", "exit_code", "note"),
    [
        (2, "offline", 0, f"inconclusive (n=2 < {MIN_N})"),
        (8, "offline-keyword", 0, "inconclusive (offline keyword judge only)"),
        (8, "offline", 1, None),
    ],
)
def test_regress_calls_no_regression_on_few_items_or_the_keyword_judge_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    prompts: int,
    judge: str,
    exit_code: int,
    note: str | None,
) -> None:
    import shutil

    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.py").write_text(
        "from harness import *\n"
        "from harness.toy.probes import NEUTRAL_PROMPTS\n"
        "def spec():\n"
        "    return Experiment(name='g', saes=(ToySAE(),), sae_quality=None,\n"
        f"        judge=JudgeSettings(kind={judge!r}), studies=(SaturationClamp(name='s',\n"
        "        feature=FeatureByIndex(index=9, label='Golden Gate Bridge',\n"
        "            keywords=('bridge',)),\n"
        f"        levels=(0, 5), controls=(), prompts=NEUTRAL_PROMPTS[:{prompts}]),))\n"
    )
    assert main(["run", "g.py", "--quiet", "--no-mlflow"]) == 0
    run = next(Path("runs").glob("g-*"))
    baseline = Path("base") / run.name
    shutil.copytree(run, baseline)
    _worsen(run, "5x")  # the steered concept score collapses in the current run
    capsys.readouterr()
    assert main(["regress", str(run), "--baseline", str(baseline)]) == exit_code
    out = capsys.readouterr().out
    report = html.unescape(
        (Path("reports") / f"{run.name}-vs-{run.name}-regression.md").read_text()
    )
    if note is None:
        assert "REGRESSED" in out and "5x concept_score: 3.000 → 0.000" in out
    else:
        assert ": ok vs " in out and note in report


def test_a_level_whose_ci_and_holm_test_disagree_is_flagged() -> None:
    """5 of 8 prompts gain a point at 10x: the paired bootstrap CI excludes 0, but the exact
    Wilcoxon p (2/32, Holm over two levels) does not clear 0.05; 2x gains nothing (agree)."""
    import numpy as np

    from harness.analysis.effects import paired_rows
    from harness.studies.saturation_report import ci_test_disagree

    base = dict.fromkeys(range(8), 0)
    concept = {
        ("s", "t", "baseline"): base,
        ("s", "t", "2x"): dict(base),
        ("s", "t", "10x"): {i: int(i < 5) for i in range(8)},
    }
    rows = paired_rows("s", "t", ["2x", "10x"], concept, np.random.default_rng(0))
    conds: dict[str, dict[str, dict[str, float]]] = {}
    for r in rows:
        conds.setdefault(r["condition"], {})[r["metric"]] = r
    top = conds["10x"]
    assert top["concept_diff"]["ci_low"] > 0 and top["concept_p_holm"]["value"] >= 0.05
    assert ci_test_disagree(top)
    assert not ci_test_disagree(conds["2x"])
