"""Human labels round trip: a stratified labelling sheet of a toy run, a scripted annotator,
the import (all or nothing, every kind of bad row refused in one line), judge-vs-human
agreement in the report, and verdicts that rest on an unvalidated judge saying so."""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.store import RunStore

SPEC = """
from harness import *
from harness.toy.probes import NEUTRAL_PROMPTS
def spec():
    return Experiment(name='labelled', saes=(ToySAE(),), sae_quality=None,
        judge=JudgeSettings(kind='offline'{threshold}), studies=(SaturationClamp(name='s',
        feature=FeatureByIndex(index=9, label='Golden Gate Bridge', keywords=('bridge',)),
        levels=(0, 2, 5, 10), controls=(), prompts=NEUTRAL_PROMPTS[:8]),))
"""
SEMANTIC = "offline-semantic-v1"


def _run(tmp_path: Path, threshold: str = "") -> RunStore:
    (tmp_path / "spec.py").write_text(SPEC.format(threshold=threshold))
    assert main(["run", "spec.py", "--quiet", "--no-mlflow"]) == 0
    return RunStore.open("latest", Path("runs"))


def _rows(sheet: Path) -> list[dict[str, str]]:
    with sheet.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write(sheet: Path, rows: list[dict[str, str]]) -> None:
    with sheet.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _judge_scores(store: RunStore, rubric_prefix: str = "concept_presence@") -> dict[str, int]:
    return {
        j["of"]: j["score"]
        for j in store.records("judgement")
        if j["judge"] == SEMANTIC
        and j["rubric"].startswith(rubric_prefix)
        and j["score"] is not None
    }


def _distinct(store: RunStore, keys: list[str]) -> list[str]:
    """``keys`` with identical texts (prompt and continuation) kept once, the first by key."""
    text = {g["key"]: (g["prompt"], g["continuation"]) for g in store.records("generation")}
    first: dict[tuple[str, str], str] = {}
    for k in sorted(keys):
        first.setdefault(text[k], k)
    return sorted(first.values())


def _kappa(a: list[int], b: list[int]) -> float:
    """Cohen's κ from its definition (observed vs chance agreement)."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    cats = set(a) | set(b)
    chance = sum((a.count(c) / n) * (b.count(c) / n) for c in cats)
    return (observed - chance) / (1 - chance)


def test_a_scripted_annotators_labels_round_trip_into_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    store = _run(tmp_path)
    sheet = tmp_path / "sheet.csv"
    assert main(["label", "latest", "--out", str(sheet), "--n", "30"]) == 0
    rows = _rows(sheet)
    assert len(rows) == 30
    conditions = {g["condition"] for g in store.records("generation")}
    assert {r["condition"] for r in rows} == conditions  # stratified: every condition appears
    assert all(r["score"] == "" for r in rows)  # no judge's score on the sheet
    assert all("scale: 0-3" in r["rubric_text"] and r["scale"] == "0-3" for r in rows)
    again = tmp_path / "again.csv"
    assert main(["label", "latest", "--out", str(again), "--n", "30"]) == 0
    assert again.read_bytes() == sheet.read_bytes()  # seeded: the same sheet

    # an annotator who agrees with the semantic judge on 4 items in 5 by construction, and
    # leaves the last two rows blank (labelling part of a sheet is normal)
    judge = _judge_scores(store)
    for i, r in enumerate(rows[:-2]):
        s = judge[r["item"]]
        r["score"] = str(s if i % 5 else (s + 1) % 4)
    _write(sheet, rows)
    capsys.readouterr()
    assert main(["label", "import", "latest", str(sheet), "--annotator", "alice"]) == 0
    out = capsys.readouterr().out
    assert "human:alice: 28 label(s) stored, 0 already stored, 2 row(s) left blank" in out
    labels = [j for j in store.records("judgement") if j["judge"] == "human:alice"]
    assert len(labels) == 28
    assert store.read_json("provenance.json")["judge"] == SEMANTIC  # never the active judge

    # agreement counts identical texts once (the first item by key)
    labelled = {r["item"]: int(r["score"]) for r in rows[:-2]}
    distinct = _distinct(store, sorted(labelled))
    a = [judge[k] for k in distinct]
    b = [labelled[k] for k in distinct]
    expected = _kappa(a, b)
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    report = html.unescape(next(Path("reports").glob(f"{store.run_id}.md")).read_text())
    assert "### Judges against humans" in report
    [line] = [x for x in report.splitlines() if "human:alice" in x and x.startswith("| concept")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    exact, kappa = cells[3], cells[4]
    assert exact.startswith(f"{agree:.2f} [")
    value, low, high = (float(x) for x in re.findall(r"-?\d+\.\d+", kappa)[:3])
    assert value == pytest.approx(expected, abs=0.005)
    assert low <= expected <= high
    assert f"(n={len(distinct)})" in kappa
    print(report.split("### Judges against humans")[1])
    assert "offline-semantic-v1 on concept\\_presence: validated (lowest κ" in report
    confusion = report.split("Confusion on concept\\_presence")[1].split("\n\n", 2)[1]
    cells = [[int(c) for c in ln.strip("|").split("|")[1:]] for ln in confusion.splitlines()[2:]]
    assert sum(map(sum, cells)) == 28 and sum(cells[i][i] for i in range(len(cells))) == 22
    # importing the same sheet again stores nothing new
    assert main(["label", "import", "latest", str(sheet), "--annotator", "alice"]) == 0
    assert "0 label(s) stored, 28 already stored" in capsys.readouterr().out


BAD_ROWS = {
    "unknown item": (lambda r: r.update(item="0123456789abcdef01234567"), "not a generation"),
    "empty item": (lambda r: r.update(item=""), "no item key"),
    "another run": (lambda r: r.update(run="other-0123456789ab"), "labels run 'other-"),
    "unknown rubric": (lambda r: r.update(rubric="concept_presence@9#00000000"), "rubric"),
    "a word for a score": (lambda r: r.update(score="two"), "is not a whole number"),
    "a fraction": (lambda r: r.update(score="1.5"), "is not a whole number"),
    "off the scale": (lambda r: r.update(score="4"), "off concept_presence's scale 0-3"),
    "below the scale": (lambda r: r.update(score="-1"), "off concept_presence's scale 0-3"),
    "a repeated item": (None, "repeats row 2"),
    "a changed label": (None, "already labelled this item"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_every_kind_of_bad_row_is_refused_in_one_line_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    monkeypatch.chdir(tmp_path)
    store = _run(tmp_path)
    sheet = tmp_path / "sheet.csv"
    assert main(["label", "latest", "--out", str(sheet), "--n", "6"]) == 0
    rows = _rows(sheet)
    for r in rows:
        r["score"] = "1"
    change, expected = BAD_ROWS[case]
    if case == "a changed label":  # the first import stands; a second may not change it
        _write(sheet, rows)
        assert main(["label", "import", "latest", str(sheet), "--annotator", "bob"]) == 0
        rows[3]["score"] = "2"
    elif case == "a repeated item":
        rows.append(dict(rows[0]))
    else:
        assert change is not None
        change(rows[3])
    _write(sheet, rows)
    before = (store.dir / "records.jsonl").read_bytes()
    capsys.readouterr()
    assert main(["label", "import", "latest", str(sheet), "--annotator", "bob"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "nothing was imported" in err[0], err
    assert "sheet.csv row" in err[0]
    assert (store.dir / "records.jsonl").read_bytes() == before


def test_a_sheet_without_a_score_column_or_a_bad_annotator_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _run(tmp_path)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("item,rubric\nabc,concept_presence@1#0\n")
    assert main(["label", "import", "latest", str(sheet), "--annotator", "bob"]) == 2
    assert "no score column" in capsys.readouterr().err
    assert main(["label", "import", "latest", str(sheet), "--annotator", "b o b"]) == 2
    assert "--annotator 'b o b'" in capsys.readouterr().err
    assert main(["label", "latest", "--out", "x.csv", "--rubric", "specificity"]) == 2
    assert "not 'specificity'" in capsys.readouterr().err


def test_a_regression_resting_on_an_unvalidated_judge_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An annotator who disagrees with the judge on every item (κ < 0.6): the collapse of the
    concept score at 5x is reported, never called a regression."""
    monkeypatch.chdir(tmp_path)
    store = _run(tmp_path)
    sheet = tmp_path / "sheet.csv"
    assert main(["label", "latest", "--out", str(sheet), "--n", "40"]) == 0
    rows = _rows(sheet)
    judge = _judge_scores(store)
    for r in rows:
        r["score"] = str((judge[r["item"]] + 2) % 4)
    _write(sheet, rows)
    assert main(["label", "import", "latest", str(sheet), "--annotator", "carol"]) == 0
    report = next(Path("reports").glob(f"{store.run_id}.md")).read_text()
    assert "**not validated**" in report
    baseline = Path("base") / store.dir.name
    shutil.copytree(store.dir, baseline)
    lines = []
    for line in (store.dir / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["kind"] == "judgement" and r["judge"] == SEMANTIC and r["condition"] == "5x":
            if r["rubric"].startswith("concept_presence@"):
                r["score"], r["unscored_reason"] = 0, None
        lines.append(json.dumps(r))
    (store.dir / "records.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["regress", str(store.dir), "--baseline", str(baseline)]) == 0
    regression = html.unescape(
        (Path("reports") / f"{store.run_id}-vs-{store.run_id}-regression.md").read_text()
    )
    assert "inconclusive (judge not validated (κ = " in regression
    assert "vs human:carol" in regression
    # with a threshold the annotator's κ clears (the spec's judge.min_kappa_vs_humans, outside
    # the spec hash), the same collapse is a regression
    for run_dir in (store.dir, baseline):
        spec = json.loads((run_dir / "spec.json").read_text())
        spec["judge"]["min_kappa_vs_humans"] = -1.0
        (run_dir / "spec.json").write_text(json.dumps(spec))
    assert main(["regress", str(store.dir), "--baseline", str(baseline)]) == 1
    assert "5x concept_score: " in capsys.readouterr().out


def test_judge_vs_human_agreement_reaches_the_mlflow_parent_run(
    tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.py").write_text(SPEC.format(threshold=""))
    assert main(["run", "spec.py", "--quiet"]) == 0
    store = RunStore.open("latest", Path("runs"))
    sheet = tmp_path / "sheet.csv"
    assert main(["label", "latest", "--out", str(sheet), "--n", "20"]) == 0
    rows = _rows(sheet)
    judge = _judge_scores(store)
    for r in rows:
        r["score"] = str(judge[r["item"]])  # full agreement
    _write(sheet, rows)
    assert main(["label", "import", "latest", str(sheet), "--annotator", "dan"]) == 0
    runs = mlflow.search_runs(experiment_names=["labelled"], output_format="list")
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    key = "judge_vs_human/concept_presence/offline-semantic-v1/human_dan/exact"
    n = len(_distinct(store, [r["item"] for r in rows]))
    assert parent.data.metrics[key] == 1.0 and parent.data.metrics[key + ".n"] == n
