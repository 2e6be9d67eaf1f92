"""Rescoring is safe, and gates judge like with like: a rescore never blanks a study, refuses a
rubric that does not fit, fails over the unscored threshold; an accepted baseline keeps its gate
judge unless --update-baseline; regress pairs scores of one judge."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.analysis.compare_rows import JUDGED
from harness.analysis.gate_judge import judge_alike
from harness.cli import main
from harness.store import RunStore
from harness.studies.registry import kinds
from harness.views.notebook import load_run
from tests.conftest import run_spec
from tests.test_regress import _checkpoint, _spec

EVERY_JUDGED_KIND = """
from harness import Ablation, Experiment, SaturationClamp, ToySAE
from harness.spec import Specificity
from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS

def spec():
    return Experiment(
        name="every_kind",
        saes=(ToySAE(name="relu-256"),),
        studies=(
            SaturationClamp(name="sweep", feature=GOLDEN_GATE, levels=(0, 4),
                            prompts=NEUTRAL_PROMPTS[:4], controls=()),
            Ablation(name="ablate", features=(GOLDEN_GATE,), prompts=NEUTRAL_PROMPTS[:4],
                     controls=()),
            Specificity(name="spec", feature=GOLDEN_GATE, bins=(0.0, 0.5), n_per_bin=3,
                        description="the Golden Gate Bridge in San Francisco"),
        ),
    )
"""


def _judged_kinds() -> set[str]:
    """Kinds with judged rows: a rubric of their own or a judged headline metric."""
    return {k.kind for k in kinds() if k.rubrics or any(h.metric in JUDGED for h in k.metrics)}


def _every_kind_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunStore:
    """A finished run of EVERY_JUDGED_KIND in ``tmp_path`` (the working directory from now)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "every.py").write_text(EVERY_JUDGED_KIND)
    return run_spec(tmp_path / "every.py")


def _judged_rows(store: RunStore) -> dict[tuple[str, str, str], int]:
    return {
        (r["study"], r["condition"], r["metric"]): r["n"]
        for r in store.read_json("summary.json")
        if r["metric"] in JUDGED
    }


def test_a_rescore_never_leaves_a_study_of_any_judged_kind_with_no_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _every_kind_run(tmp_path, monkeypatch)
    kinds_here = {s.kind for s in store.experiment().studies}
    assert _judged_kinds() <= kinds_here, "add the new judged kind to this spec"
    before = _judged_rows(store)
    assert {s for s, _, _ in before} == {"sweep", "ablate", "spec"}
    assert all(n > 0 for n in before.values())

    assert main(["rescore", "latest", "--judge", "offline-keyword"]) == 0
    after = _judged_rows(store)
    assert after.keys() == before.keys()
    assert all(n > 0 for n in after.values()), after  # every study read with a judge that scored it
    prov = store.read_json("provenance.json")
    assert prov["judge"] == "offline-keyword-v1" and prov["study_judging"] == {}
    report = (tmp_path / "reports" / f"{store.run_id}.md").read_text()
    assert "by `–`" not in report

    # a study whose contexts the keyword judge's judgements were lost from is re-judged
    lines = store.records_path.read_text().splitlines()
    kept = [
        x for x in lines if not ('"judge": "offline-keyword-v1"' in x and '"study": "spec"' in x)
    ]
    assert len(kept) < len(lines)
    store.records_path.write_text("\n".join(kept) + "\n")
    fresh = RunStore.open(store.run_id, Path("runs"))
    assert main(["rescore", "latest", "--judge", "offline-keyword"]) == 0
    assert fresh.read_json("provenance.json")["study_judging"] == {}
    assert _judged_rows(fresh) == after


def test_a_rescore_whose_judge_fails_on_a_study_leaves_it_its_judge_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _every_kind_run(tmp_path, monkeypatch)
    before = _judged_rows(store)
    import harness.judge.offline as offline

    # the keyword judge leaves every specificity context unscored (a judge that fails there)
    monkeypatch.setitem(offline._RULES, "specificity", lambda req, lex: (None, "no verdict"))
    capsys.readouterr()
    assert main(["rescore", "latest", "--judge", "offline-keyword"]) == 1
    err = capsys.readouterr().err
    assert "study spec keeps judge offline-semantic-v1" in err
    assert "unscored, above judge.max_unscored_fraction=0.2" in err
    prov = store.read_json("provenance.json")
    assert prov["judge"] == "offline-keyword-v1"
    assert prov["study_judging"]["spec"]["judge"] == "offline-semantic-v1"
    after = _judged_rows(store)
    assert after.keys() == before.keys() and all(n > 0 for n in after.values())
    # the specificity rows are the semantic judge's, unchanged
    spec_rows = {k: n for k, n in after.items() if k[0] == "spec"}
    assert spec_rows == {k: n for k, n in before.items() if k[0] == "spec"}


def test_rescore_refuses_a_rubric_that_does_not_fit_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _every_kind_run(tmp_path, monkeypatch)
    before = store.records_path.read_bytes()
    capsys.readouterr()
    assert main(["rescore", "latest", "--rubric", "specificity"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rubric 'specificity'" in err[0] and "not generations" in err[0]
    assert store.records_path.read_bytes() == before  # nothing judged, nothing changed


def test_an_accepted_baseline_keeps_its_gate_judge_and_the_gate_pairs_like_with_like(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The B1 scenario: accept, rescore the baseline with another judge, nightly of a spec whose
    checkpoint regressed: still exit 1 with the regression named, and the rescore warned."""
    monkeypatch.chdir(tmp_path)
    good = _checkpoint(tmp_path / "ckpt", "good", 0.0)
    bad = _checkpoint(tmp_path / "ckpt", "bad", 4.0)
    specs = tmp_path / "specs"
    _spec(specs, good)
    runs = ["--runs", "runs"]
    assert main(["nightly", str(specs), *runs, "--no-mlflow", "--quiet"]) == 0
    [first] = list(Path("runs/nightly").glob("*/ckpt_gate-*"))
    assert main(["accept", str(first), *runs]) == 0
    baseline = RunStore(first)

    capsys.readouterr()
    assert main(["rescore", str(first), *runs, "--judge", "offline-keyword"]) == 0
    err = capsys.readouterr().err
    assert "is the accepted baseline accepted/ckpt_gate" in err and "--update-baseline" in err
    assert baseline.read_json("provenance.json")["judge"] == "offline-semantic-v1"
    assert any(r["judge"] == "offline-keyword-v1" for r in baseline.records("judgement"))

    assert (
        main(["rescore", str(first), *runs, "--judge", "offline-keyword", "--update-baseline"]) == 0
    )
    assert "from now on the gate reads it with offline-keyword-v1" in capsys.readouterr().err
    assert baseline.read_json("provenance.json")["judge"] == "offline-keyword-v1"

    # the regressed checkpoint, judged by the spec's judge (semantic): the gate reads both runs
    # with the semantic judge, which judged the baseline too
    _spec(specs, bad, fit_gate=", fit_gate=None")
    time.sleep(1.1)  # nightly folders are named by the second
    capsys.readouterr()
    assert main(["nightly", str(specs), *runs, "--no-mlflow", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "(judge offline-semantic-v1)" in out
    assert "concept_score: 3.000 → " in out
    now = load_run(sorted(Path("runs/nightly").glob("*/ckpt_gate-*"))[-1])
    alike = judge_alike([load_run(first), now])
    assert alike.judges == ["offline-semantic-v1", "offline-semantic-v1"]
    assert alike.runs[0].provenance["judge"] == "offline-semantic-v1"  # read as, not changed
    assert baseline.read_json("provenance.json")["judge"] == "offline-keyword-v1"


def test_runs_with_no_common_judge_are_compared_only_where_their_rules_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "every.py").write_text(EVERY_JUDGED_KIND)
    keyword = EVERY_JUDGED_KIND.replace('name="every_kind",', 'name="every_kind", seed=1,')
    (tmp_path / "other.py").write_text(keyword)
    a = load_run(run_spec(tmp_path / "every.py").dir)
    b_store = run_spec(tmp_path / "other.py")
    # b judged by the keyword judge only: drop its semantic judgements
    assert main(["rescore", str(b_store.dir), "--judge", "offline-keyword"]) == 0
    lines = b_store.records_path.read_text().splitlines()
    b_store.records_path.write_text(
        "\n".join(x for x in lines if '"judge": "offline-semantic-v1"' not in x) + "\n"
    )
    b = load_run(b_store.dir)
    shown = repr(b)  # a notebook's echo: one short line, never the spec and frames
    assert "\n" not in shown and len(shown) < 400 and b.run_id in shown
    assert "judge 'offline-keyword-v1'" in shown and "1 SAE(s), 3 studies" in shown
    from harness.errors import StoreError

    with pytest.raises(StoreError, match="score concept_presence differently") as err:
        judge_alike([a, b])
    assert f"harness rescore {b.run_id} --judge offline" in str(err.value)
    # fluency alone is scored by the same rules by both offline judges: no refusal needed
    from harness.judge.base import same_rules

    assert same_rules("offline-keyword-v1", "offline-semantic-v1", "fluency")
    assert not same_rules("offline-keyword-v1", "offline-semantic-v1", "concept_presence")
