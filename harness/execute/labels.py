"""Human labels, round trip: a labelling sheet sampled from a run's judged items, and its import
as judgements of the judge ``human:<annotator>``.

``write_sheet`` samples items reproducibly (a seed) and stratified (by condition, prompt set or
the active judge's score) so every stratum appears; the sheet shows the prompt, the
continuation and the rubric's text and scale, never a judge's score. ``import_sheet`` checks
every row first (unknown or empty item, another run's or rubric's row, a score that is not a
whole number on the scale, a repeated item, a label that would change one already stored) and
stores nothing when any row is wrong: one line names the first problem and how many more there
are. A blank score cell is an item the annotator did not label (labelling part of a sheet is
normal). Labels are judgements of their own judge: they never replace a model judge's, and the
agreement statistics (``analysis/judge_agreement.py``) read them like any other judge's.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.judge_validity import HUMAN  # an annotator's judge: human:<name>
from harness.errors import HarnessError
from harness.judge.base import Judgement
from harness.judge.rubric import load_rubric, parse_rubric
from harness.judge.service import judgement_key, judgement_record
from harness.store import RunStore

__all__ = [
    "HUMAN",
    "SHEET_COLUMNS",
    "STRATA",
    "ImportResult",
    "LabelError",
    "import_sheet",
    "write_sheet",
]

STRATA = ("level", "prompt_set", "judge_score")
SHEET_COLUMNS = (
    "item",
    "run",
    "rubric",
    "scale",
    "sae",
    "study",
    "condition",
    "prompt_set",
    "prompt",
    "continuation",
    "rubric_text",
    "score",
    "note",
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class LabelError(HarnessError):
    """A labelling sheet or request that cannot be used (nothing was stored)."""

    exit_code = 2


@dataclass(frozen=True)
class _Rubric:
    name: str
    ident: str
    text: str
    low: int
    high: int


def _rubrics(store: RunStore) -> dict[str, _Rubric]:
    """The run's generation rubrics by name (primary and extra), with their text and scale."""
    prov = store.read_json("provenance.json")
    texts: dict[str, str] = prov.get("rubric_texts") or {}
    named: dict[str, str] = dict(prov.get("rubrics") or {})
    named.setdefault(prov["rubric"].split("@", 1)[0], prov["rubric"])
    out = {}
    for name, ident in named.items():
        rubric = parse_rubric(texts[ident], ident) if ident in texts else load_rubric(name)
        out[name] = _Rubric(name, ident, rubric.text, rubric.low, rubric.high)
    return out


def _pick_rubric(store: RunStore, name: str | None) -> _Rubric:
    rubrics = _rubrics(store)
    primary = store.read_json("provenance.json")["rubric"].split("@", 1)[0]
    chosen = rubrics.get(name or primary)
    if chosen is None:
        raise LabelError(
            f"run {store.run_id} judged its generations on {sorted(rubrics)}, not {name!r} "
            "(a kind's own rubric, e.g. specificity, is not labelled on generations)"
        )
    return chosen


def write_sheet(
    store: RunStore,
    out: Path,
    rubric: str | None = None,
    n: int = 100,
    stratify: str = "level",
    seed: int = 0,
) -> int:
    """Write a labelling sheet of up to ``n`` judged generations of ``store`` to ``out`` (CSV);
    returns how many rows it holds."""
    if stratify not in STRATA:
        raise LabelError(f"--stratify {stratify!r}: valid {list(STRATA)}")
    chosen = _pick_rubric(store, rubric)
    judged = {j["of"] for j in store.records("judgement") if j["rubric"] == chosen.ident}
    items = [g for g in store.records("generation") if g["key"] in judged]
    if not items:
        raise LabelError(f"run {store.run_id} has no generation judged on {chosen.name}")
    active = {j["of"]: j["score"] for j in store.judgements(chosen.ident)}

    def stratum(g: dict[str, Any]) -> str:
        if stratify == "level":
            return str(g["condition"])
        if stratify == "prompt_set":
            return str(g.get("prompt_set", "target"))
        score = active.get(g["key"])
        return "unscored" if score is None else str(score)

    rng = np.random.default_rng(seed)
    groups: dict[str, list[dict[str, Any]]] = {}
    for g in sorted(items, key=lambda g: g["key"]):
        groups.setdefault(stratum(g), []).append(g)
    queues = []
    for name in sorted(groups):
        members = groups[name]
        order = rng.permutation(len(members))
        queues.append([members[i] for i in order])
    picked: list[dict[str, Any]] = []
    while len(picked) < n and any(queues):  # round robin: every stratum appears
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(SHEET_COLUMNS))
        writer.writeheader()
        for g in picked:
            writer.writerow(
                {
                    "item": g["key"],
                    "run": store.run_id,
                    "rubric": chosen.ident,
                    "scale": f"{chosen.low}-{chosen.high}",
                    "sae": g["sae"],
                    "study": g["study"],
                    "condition": g["condition"],
                    "prompt_set": g.get("prompt_set", "target"),
                    "prompt": g["prompt"],
                    "continuation": g["continuation"],
                    "rubric_text": chosen.text,
                    "score": "",
                    "note": "",
                }
            )
    return len(picked)


@dataclass(frozen=True)
class ImportResult:
    """What an import did: labels stored, blank rows skipped, labels already stored."""

    judge: str
    stored: int
    blank: int
    already: int


def _read(sheet: Path) -> list[dict[str, str]]:
    try:
        with sheet.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("item", "rubric", "score") if c not in (reader.fieldnames or [])]
            if missing:
                raise LabelError(
                    f"{sheet}: no {', '.join(missing)} column (a sheet from `harness label` has "
                    f"{', '.join(SHEET_COLUMNS)})"
                )
            return [dict(row) for row in reader]
    except OSError as exc:
        raise LabelError(f"{sheet}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{sheet}: not a UTF-8 CSV sheet ({exc})") from None


def import_sheet(store: RunStore, sheet: Path, annotator: str) -> ImportResult:
    """Check every row of ``sheet``, then store its labels as judgements of
    ``human:<annotator>`` (all or nothing). Call it holding the run's writer lock."""
    if not _NAME.match(annotator):
        raise LabelError(
            f"--annotator {annotator!r}: 1 to 64 letters, digits, '_', '.' or '-' (it names "
            "the judge human:<annotator>)"
        )
    judge = HUMAN + annotator
    rubrics = {r.ident: r for r in _rubrics(store).values()}
    generations = {g["key"]: g for g in store.records("generation")}
    stored = {j["key"]: j for j in store.records("judgement") if j["judge"] == judge}
    rows = _read(sheet)
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    fresh: list[dict[str, Any]] = []
    blank = already = 0
    for number, row in enumerate(rows, start=2):  # the header is line 1
        where = f"{sheet.name} row {number}"
        item, ident = (row.get("item") or "").strip(), (row.get("rubric") or "").strip()
        text = (row.get("score") or "").strip()
        if row.get("run") not in (None, "", store.run_id):
            problems.append(f"{where}: labels run {row['run']!r}, not {store.run_id!r}")
            continue
        if not item:
            problems.append(f"{where}: no item key")
            continue
        if item not in generations:
            problems.append(f"{where}: item {item[:12]!r} is not a generation of this run")
            continue
        rubric = rubrics.get(ident)
        if rubric is None:
            problems.append(f"{where}: rubric {ident!r} is not one this run judged with")
            continue
        if (item, ident) in seen:
            problems.append(f"{where}: item {item[:12]!r} repeats row {seen[(item, ident)]}")
            continue
        seen[(item, ident)] = number
        if not text:
            blank += 1  # not labelled: normal
            continue
        if not re.fullmatch(r"[+-]?\d+", text):
            problems.append(f"{where}: score {text!r} is not a whole number")
            continue
        score = int(text)
        if not rubric.low <= score <= rubric.high:
            problems.append(
                f"{where}: score {score} is off {rubric.name}'s scale {rubric.low}-{rubric.high}"
            )
            continue
        key = judgement_key(item, judge, ident)
        if key in stored:
            if stored[key]["score"] != score:
                problems.append(
                    f"{where}: {judge} already labelled this item {stored[key]['score']} (a "
                    "label is never overwritten; import it under another annotator name)"
                )
            else:
                already += 1
            continue
        verdict = Judgement(
            score=score,
            judge=judge,
            rubric=ident,
            prompt=f"human label from {sheet.name}",
            raw_reply=(row.get("note") or "")[:2000],
        )
        fresh.append(judgement_record(generations[item], verdict))
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise LabelError(f"{problems[0]}{more}; nothing was imported")
    if not fresh and not already:
        raise LabelError(f"{sheet}: nothing to import, every score cell is empty")
    store.append(fresh)
    return ImportResult(judge, len(fresh), blank, already)
