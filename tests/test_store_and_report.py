"""Run store (append-only, torn-tail safe, spec-checked) and Markdown escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from harness.analysis.stats import bootstrap_mean
from harness.errors import StoreError
from harness.store import RunStore
from harness.store.records import Record, register_record
from harness.views.report.markdown import cell
from tests.conftest import tiny_experiment


class Note(Record):
    """A record kind for testing the store's mechanics (any key, an optional number)."""

    kind: Literal["note"] = "note"
    v: int | None = None


class Memo(Record):
    """A second record kind for the tests."""

    kind: Literal["memo"] = "memo"


register_record(Note)
register_record(Memo)


def test_append_read_and_resume_keys(tmp_path: Path) -> None:
    store = RunStore.for_experiment(tiny_experiment(), tmp_path)
    store.append([{"kind": "note", "key": "a", "v": 1}, {"kind": "memo", "key": "b"}])
    store.append([])
    assert [r["key"] for r in store.records()] == ["a", "b"]
    assert set(store.done_keys("note")) == {"a"}
    again = RunStore.for_experiment(tiny_experiment(), tmp_path)
    assert again.dir == store.dir and set(again.done_keys("note")) == {"a"}


def test_a_torn_last_line_is_ignored_and_repaired(tmp_path: Path) -> None:
    store = RunStore.for_experiment(tiny_experiment(), tmp_path)
    store.append([{"kind": "note", "key": "a"}])
    with open(store.records_path, "a") as fh:
        fh.write('{"kind": "note", "key": "torn"')  # killed mid-write
    assert list(store.done_keys("note")) == ["a"]
    store.append([{"kind": "note", "key": "c"}])
    lines = store.records_path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "c"]


def test_records_are_checked_against_their_kind_before_they_are_written(tmp_path: Path) -> None:
    store = RunStore.for_experiment(tiny_experiment(), tmp_path)
    judgement = {
        "kind": "judgement",
        "key": "j",
        "of": "g",
        "sae": "s",
        "study": "t",
        "condition": "1x",
        "prompt_index": 0,
        "judge": "offline-keyword-v1",
        "rubric": "concept_presence@1#x",
        "prompt": "p",
        "raw_reply": "Score: 2",
        "score": 2,
    }
    assert store.append([judgement]) == 1
    bad = [
        ({**judgement, "key": "k", "unscored_reason": "timeout"}, "score or an unscored_reason"),
        ({**judgement, "key": "k", "score": "two"}, "score"),
        ({"kind": "generation", "key": "g"}, "generation record"),
        ({"kind": "mystery", "key": "m"}, "unknown record kind 'mystery'"),
        ({**judgement, "key": "k", "surprise": 1}, "surprise"),
    ]
    for record, message in bad:
        with pytest.raises(StoreError, match=message):
            store.append([record])
    assert len(store.records_path.read_text().splitlines()) == 1  # nothing else was written


def test_a_key_is_stored_once_per_kind(tmp_path: Path) -> None:
    """Appending a key already stored (or twice in one call) writes nothing: no count twice."""
    store = RunStore.for_experiment(tiny_experiment(), tmp_path)
    assert store.append([{"kind": "note", "key": "a"}, {"kind": "note", "key": "a"}]) == 1
    assert store.append([{"kind": "note", "key": "a", "v": 2}]) == 0
    assert store.append([{"kind": "memo", "key": "a"}]) == 1  # keys are per kind
    assert len(store.records_path.read_text().splitlines()) == 2
    # a duplicate line written by someone else (no lock) is read once, the first one
    with open(store.records_path, "a") as fh:
        fh.write(json.dumps({"kind": "note", "key": "a", "v": 3}) + "\n")
    fresh = RunStore(store.dir)
    assert [r.get("v") for r in fresh.records("note")] == [None]


def test_a_reader_sees_what_another_writer_appended(tmp_path: Path) -> None:
    writer = RunStore.for_experiment(tiny_experiment(), tmp_path)
    reader = RunStore(writer.dir)
    assert list(reader.records()) == []
    writer.append([{"kind": "note", "key": "a"}])
    assert [r["key"] for r in reader.records("note")] == ["a"]
    writer.append([{"kind": "note", "key": "b"}])
    assert set(reader.done_keys("note")) == {"a", "b"}


def test_a_damaged_line_is_named_with_its_line_number(tmp_path: Path) -> None:
    store = RunStore.for_experiment(tiny_experiment(), tmp_path)
    store.append([{"kind": "note", "key": "a"}])
    with open(store.records_path, "a") as fh:
        fh.write("{not json}\n")
    with pytest.raises(StoreError, match=r"records.jsonl:2: damaged record line"):
        list(RunStore(store.dir).records())


def test_store_bench_writes_and_aggregates_every_record() -> None:
    from harness.bench.store import bench_store

    (small,) = bench_store((700,))
    assert small.records == 700  # 20 prompts × 35 records
    assert small.summary_rows > 20 and small.append_s > 0 and small.aggregate_s > 0


def test_a_different_spec_never_shares_a_run_directory(tmp_path: Path) -> None:
    a = RunStore.for_experiment(tiny_experiment((0, 1)), tmp_path)
    b = RunStore.for_experiment(tiny_experiment((0, 2)), tmp_path)
    assert a.dir != b.dir
    (b.dir / "spec.json").write_text(a.dir.joinpath("spec.json").read_text())
    with pytest.raises(StoreError, match="different spec"):
        RunStore.for_experiment(tiny_experiment((0, 2)), tmp_path)


def test_open_by_id_path_and_latest(tmp_path: Path) -> None:
    a = RunStore.for_experiment(tiny_experiment((0, 1)), tmp_path)
    assert RunStore.open(a.run_id, tmp_path).dir == a.dir
    assert RunStore.open(str(a.dir), tmp_path).dir == a.dir
    with pytest.raises(StoreError):
        RunStore.open("nope", tmp_path)


HOSTILE = [
    "a | b | c",
    "line one\nline two\r\n| --- |",
    "`code` and ```fence```",
    "<script>alert(1)</script> <b>bold</b>",
    "# heading [link](http://x) *em* _u_ \\ backslash",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_cannot_break_a_table_row(text: str) -> None:
    row = f"| {cell(text)} | 3 |"
    assert "\n" not in row and "<script>" not in row and "`" not in row.replace("\\`", "")
    # exactly three unescaped pipes: the row's own delimiters
    assert len(re.findall(r"(?<!\\)\|", row)) == 3


def test_bootstrap_ci_of_a_constant_and_of_a_mean() -> None:
    rng = np.random.default_rng(0)
    const = bootstrap_mean([2.0] * 10, rng)
    assert (const.value, const.ci_low, const.ci_high, const.n) == (2.0, 2.0, 2.0, 10)
    # closed form: for a large 0/1 sample the bootstrap CI matches p ± 1.96·sqrt(p(1−p)/n)
    data = [1.0] * 300 + [0.0] * 700
    est = bootstrap_mean(data, np.random.default_rng(1), n_resamples=4000)
    half = 1.96 * (0.3 * 0.7 / 1000) ** 0.5
    assert abs(est.ci_low - (0.3 - half)) < 0.006 and abs(est.ci_high - (0.3 + half)) < 0.006
    empty = bootstrap_mean([], rng)
    assert empty.n == 0 and np.isnan(empty.value)


def test_progress_off_a_terminal_is_one_clean_line_per_stage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harness.execute.options import Bars

    bars = Bars(True, tty=False)
    for done in range(0, 5):
        bars("generate", done, 4)
    bars("judge", 3, 3)  # resumed: everything was stored
    bars("empty", 0, 0)
    lines = capsys.readouterr().err.splitlines()  # stdout stays for results
    assert lines[0].startswith("generate: 4 items, 4 done in ")
    assert lines[1] == "judge: 3 items, all stored already"
    assert len(lines) == 2


def test_numbers_are_formatted_by_magnitude() -> None:
    from harness.views.report.markdown_table import fmt_estimate, fmt_number

    assert fmt_estimate(62038.9, 44329.84, 84424.29, 16) == "62,039 [44,330, 84,424] (n=16)"
    assert fmt_number(-0.0001, 3) == "0.000" and fmt_number(-0.2, 2) == "-0.20"
    assert fmt_estimate(1.234, 0.9, 1.5, 8) == "1.23 [0.90, 1.50] (n=8)"


def test_only_a_dead_writers_temp_files_are_removed(tmp_path: Path) -> None:
    import os

    store = RunStore.for_experiment(tiny_experiment(), tmp_path)
    live = store.dir / f".spec.json.tmp{os.getpid()}"  # another writer, mid-write
    dead = store.dir / ".status.json.tmp999999999"  # a write cut short by a kill
    live.write_text("x")
    dead.write_text("y")
    assert store.remove_stale_temp_files() == 1
    assert live.exists() and not dead.exists()
