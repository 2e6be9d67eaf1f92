"""The run store: one directory per run, append-only records, the source of truth (DESIGN §8).

Layout of ``<root>/<run_id>/``:

- ``spec.json``        the validated spec (canonical JSON; later stages never re-import user code)
- ``provenance.json``  git commit and dirty flag, package versions, device, judge
- ``records.jsonl``    one JSON object per line, appended (and fsynced) as each item completes
- ``summary.json``     the aggregate rows, rebuilt from the records

The run id is the experiment name plus the spec hash, so running the same spec again finds the
same directory and skips every record whose key is already there (resume).

Appending costs O(records appended): nothing is read before a write. Reading parses the file once
per :class:`RunStore` and then only the bytes appended since (by this or another process), into an
index of records by kind and by key; every reader (aggregation, reports, compare, regress, the
notebook API) shares it. A key can be stored once per kind: appending a record whose key is
already there is a no-op, so nothing can count twice.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import harness.studies.registry  # noqa: F401 - registers the study kinds' record models
from harness.errors import StoreError
from harness.spec import Experiment
from harness.store.files import (
    alive,
    local_weights_fingerprint,
    named,
    write_atomic,
    write_in_place,
)
from harness.store.find import find_run
from harness.store.lock import RunLockedError, live_holder, writer_lock
from harness.store.records import parse_record

__all__ = [
    "RunLockedError",
    "RunStore",
    "default_runs_root",
    "local_weights_fingerprint",
    "write_atomic",
]


def default_runs_root() -> Path:
    """``$HARNESS_RUNS`` if set, else ``./runs``."""
    return Path(os.environ.get("HARNESS_RUNS", "runs"))


class RunStore:
    """A run directory: spec, provenance and append-only JSONL records."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.records_path = directory / "records.jsonl"
        self._offset = 0  # bytes of records.jsonl parsed so far (always at a line end)
        self._lines = 0
        self._ordered: list[dict[str, Any]] = []
        self._by_kind: dict[str, dict[str, dict[str, Any]]] = {}
        self._json_cache: dict[str, tuple[float, int, Any]] = {}
        self._provenance_as: dict[str, Any] | None = None  # a read-as-judged view (read_as)

    @property
    def run_id(self) -> str:
        """The run's id (its directory name)."""
        return self.dir.name

    @staticmethod
    def dir_for(experiment: Experiment, root: Path) -> Path:
        """The run directory of this spec under ``root`` (not created)."""
        weights = local_weights_fingerprint(experiment)
        digest = experiment.spec_hash()
        if weights:
            digest = hashlib.sha256(f"{digest}|{weights}".encode()).hexdigest()
        return root / f"{experiment.name}-{digest[:12]}"

    @classmethod
    def for_experiment(cls, experiment: Experiment, root: Path) -> RunStore:
        """Open (creating if needed) the run directory of this spec; refuses a mismatched one.

        The id is the spec hash, and for SAEs in local folders also their weights: a checkpoint
        retrained in place gets a run of its own instead of resuming into stale records."""
        run_dir = cls.dir_for(experiment, root)
        run_dir.mkdir(parents=True, exist_ok=True)
        store = cls(run_dir)
        spec_path = run_dir / "spec.json"
        if spec_path.exists():
            stored = Experiment.model_validate_json(spec_path.read_text())
            if stored.spec_hash() != experiment.spec_hash():
                raise StoreError(f"{run_dir} holds a different spec; refusing to mix records")
            if stored.canonical_json() != experiment.canonical_json():
                # only fields that change no result differ (device, regression tolerances):
                # the stored spec is the one last run, so `harness regress` gates on its tolerances
                write_atomic(spec_path, experiment.canonical_json())
        else:
            write_atomic(spec_path, experiment.canonical_json())
        return store

    @classmethod
    def open(cls, ref: str, root: Path) -> RunStore:
        """Open an existing run by directory path, run id, ``latest`` (the run that finished
        most recently, nightly runs included) or ``latest-any`` (the run started most recently,
        whatever its status): :func:`harness.store.find.find_run`."""
        return cls(find_run(ref, root, lambda d: str(cls(d).status().get("status", "new"))))

    @contextmanager
    def writer_lock(self, wait: bool = False, say: Callable[[str], None] = print) -> Iterator[None]:
        """Hold the run directory's writer lock for the block: one writer per run (Rule 5;
        :func:`harness.store.lock.writer_lock`)."""
        with writer_lock(self.dir, wait, say):
            yield

    def is_live(self) -> bool:
        """Whether a live process holds the writer lock (a run in progress right now), read
        from the holder the lock file names, without touching the lock."""
        try:
            line = (self.dir / ".lock").read_text(encoding="utf-8")
        except OSError:
            return False
        return live_holder(line) is not None

    def write_status(self, data: dict[str, Any]) -> None:
        """Write ``status.json``, padded to whole 4 KiB blocks (8 KiB at least): when the disk
        is full (the usual reason a run fails), the failure is written over those blocks in
        place, so the run says ``failed`` and why instead of looking killed."""
        text = json.dumps(data, indent=1, sort_keys=True, default=str)
        padded = text + " " * max(8192 - len(text), -len(text) % 4096)
        path = self.dir / "status.json"
        try:
            write_atomic(path, padded)
        except OSError:
            if not write_in_place(path, text):
                raise
        self._json_cache.pop("status.json", None)

    def status(self) -> dict[str, Any]:
        """``status.json`` (``{}`` before the first start), with a run whose process died while
        ``running`` (its lock is free) shown as ``killed``."""
        path = self.dir / "status.json"
        if not path.exists():
            return {}
        data: dict[str, Any] = self.read_json("status.json")
        if data.get("status") == "running" and not self.is_live():
            data = {**data, "status": "killed", "stale": True}
        return data

    def experiment(self) -> Experiment:
        """The stored spec."""
        return Experiment.model_validate(self.read_json("spec.json"))

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``name`` (e.g. provenance.json) atomically; returns its path."""
        path = self.dir / name
        write_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=str))
        self._json_cache.pop(name, None)
        return path

    def read_as(self, judge: str) -> RunStore:
        """A read-only view of this run as judged by ``judge`` (one it was judged or rescored
        with): its provenance names that judge for every study (a gate judging runs alike)."""
        from harness.store.judged import provenance_as

        view = RunStore(self.dir)
        view._provenance_as = provenance_as(self, judge)
        return view

    def read_json(self, name: str) -> Any:
        """Read a JSON file of the run (parsed again only when the file has changed)."""
        if name == "provenance.json" and self._provenance_as is not None:
            return copy.deepcopy(self._provenance_as)
        path = self.dir / name
        st = path.stat()
        hit = self._json_cache.get(name)
        if hit is None or hit[:2] != (st.st_mtime, st.st_size):
            hit = (st.st_mtime, st.st_size, json.loads(path.read_text()))
            self._json_cache[name] = hit
        return copy.deepcopy(hit[2])

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records whose key is not stored yet, one line each, in a single write, then
        fsync; returns how many were written."""
        self._refresh()
        fresh: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for r in records:
            ident = (str(r.get("kind")), str(r.get("key")))
            if ident in seen or r.get("key") in self._by_kind.get(ident[0], {}):
                continue
            parse_record(r)  # the kind's typed model: a malformed record is never written
            seen.add(ident)
            fresh.append(r)
        if not fresh:
            return 0
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in fresh).encode()
        self._drop_torn_tail()
        try:
            with open(self.records_path, "ab") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:  # a full disk's error names no file: this one does
            raise named(exc, self.records_path) from None
        self._refresh()
        return len(fresh)

    def _drop_torn_tail(self) -> None:
        """Cut a partial last line left by a crash mid-write, so new records start clean. After
        :meth:`_refresh` everything up to ``_offset`` is complete lines; bytes past it without a
        newline are a torn line (reads only those bytes)."""
        if not self.records_path.exists():
            return
        with open(self.records_path, "r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size <= self._offset:
                return
            fh.seek(self._offset)
            if b"\n" not in fh.read(size - self._offset):
                fh.truncate(self._offset)

    def torn_tail(self) -> int:
        """How many bytes past the last complete line of ``records.jsonl`` (0: none): a record
        cut mid-write by a crash, missing from every view until ``harness run`` redoes it."""
        self._refresh()
        try:
            return max(0, self.records_path.stat().st_size - self._offset)
        except FileNotFoundError:
            return 0

    def remove_stale_temp_files(self) -> int:
        """Remove the temporary files of atomic writes whose process is gone (a write cut short
        by a kill); a live writer's (``.NAME.tmpPID``) is left alone. Returns how many."""
        removed = 0
        for path in self.dir.glob(".*.tmp*"):
            pid = path.name.rsplit(".tmp", 1)[-1]
            if pid.isdigit() and alive(int(pid)):
                continue
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def set_aside_damaged(self) -> int:
        """Move complete lines that are not JSON records into ``records.damaged.jsonl`` (with
        their line numbers) and rewrite ``records.jsonl`` without them, so the items they held
        are redone; returns how many were moved. Call it holding the writer lock."""
        if not self.records_path.exists():
            return 0
        data = self.records_path.read_bytes()
        end = data.rfind(b"\n") + 1
        good: list[bytes] = []
        bad: list[str] = []
        for number, raw in enumerate(data[:end].splitlines(keepends=True), start=1):
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or "kind" not in record or "key" not in record:
                    raise ValueError("not a record")
                good.append(raw)
            except ValueError:
                bad.append(json.dumps({"line": number, "text": raw.decode("utf-8", "replace")}))
        if not bad:
            return 0
        with open(self.dir / "records.damaged.jsonl", "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in bad))
            fh.flush()
            os.fsync(fh.fileno())
        tmp = self.records_path.with_name(f".records.jsonl.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(b"".join(good))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.records_path)
        finally:
            tmp.unlink(missing_ok=True)
        self._offset, self._lines, self._ordered, self._by_kind = 0, 0, [], {}
        return len(bad)

    def _refresh(self) -> None:
        """Parse the complete lines appended since the last look (by anyone) into the index."""
        try:
            size = self.records_path.stat().st_size
        except FileNotFoundError:
            return
        if size < self._offset:  # the file was cut (a torn tail dropped): parse it again
            self._offset, self._lines, self._ordered, self._by_kind = 0, 0, [], {}
        if size == self._offset:
            return
        with open(self.records_path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read(size - self._offset)
        end = data.rfind(b"\n") + 1  # a torn last line: the process died mid-write
        for raw in data[:end].splitlines():
            self._lines += 1
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                raise StoreError(
                    f"{self.records_path}:{self._lines}: damaged record line ({exc}); "
                    "`harness run` on its spec sets damaged lines aside and redoes those items"
                ) from None
            by_key = self._by_kind.setdefault(str(record.get("kind")), {})
            key = str(record.get("key"))
            if key in by_key:
                continue  # a duplicate (two writers without a lock): it never counts twice
            by_key[key] = record
            self._ordered.append(record)
        self._offset += end

    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Every complete record in the order stored (a torn last line from a crash is skipped),
        optionally of one kind; each key once per kind."""
        self._refresh()
        if kind is None:
            return iter(list(self._ordered))
        return iter(list(self._by_kind.get(kind, {}).values()))

    def records_in_spec_order(self, kind: str) -> list[dict[str, Any]]:
        """Records of one kind ordered by the spec's SAEs, then its studies (stable within one
        SAE × study): the order views show, whichever executor's cell landed first."""
        from harness.spec import sae_label

        exp = self.experiment()
        saes = {sae_label(ref): i for i, ref in enumerate(exp.saes)}
        studies = {s.name: i for i, s in enumerate(exp.studies)}

        def place(r: dict[str, Any]) -> tuple[int, int]:
            return saes.get(str(r.get("sae")), len(saes)), studies.get(
                str(r.get("study")), len(studies)
            )

        return sorted(self.records(kind), key=place)

    def judgements(
        self, rubric: str | None = None, every_attempt: bool = False, judge: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The judgements views read (:func:`harness.store.judged.active_judgements`): by the
        active judge of each study, on one rubric ident (default: the primary) or every active
        rubric (``"*"``); the final attempt per item unless ``every_attempt``; ``judge``: that
        judge's instead."""
        from harness.store.judged import active_judgements

        return active_judgements(self, rubric, every_attempt, judge)

    def done_keys(self, kind: str) -> Mapping[str, dict[str, Any]]:
        """Records of one kind by key: what a resumed run does not redo (a read-only view that
        follows later appends; copy it to keep a snapshot)."""
        self._refresh()
        return MappingProxyType(self._by_kind.setdefault(kind, {}))
