"""The run store: one directory per run, append-only records, the source of truth (DESIGN §8).

Layout of ``<root>/<run_id>/``:

- ``spec.json``        the validated spec (canonical JSON; later stages never re-import user code)
- ``provenance.json``  git commit and dirty flag, package versions, device, judge
- ``records.jsonl``    one JSON object per line, appended (and fsynced) as each item completes
- ``summary.json``     the aggregate rows, rebuilt from the records

The run id is the experiment name plus the spec hash, so running the same spec again finds the
same directory and skips every record whose key is already there (resume).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.errors import StoreError
from harness.spec import Experiment

__all__ = ["RunStore", "default_runs_root", "write_atomic"]


def default_runs_root() -> Path:
    """``$HARNESS_RUNS`` if set, else ``./runs``."""
    return Path(os.environ.get("HARNESS_RUNS", "runs"))


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file so readers see the old or the new content, never a torn one."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunStore:
    """A run directory: spec, provenance and append-only JSONL records."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.records_path = directory / "records.jsonl"

    @property
    def run_id(self) -> str:
        """The run's id (its directory name)."""
        return self.dir.name

    @classmethod
    def for_experiment(cls, experiment: Experiment, root: Path) -> RunStore:
        """Open (creating if needed) the run directory of this spec; refuses a mismatched one."""
        run_dir = root / f"{experiment.name}-{experiment.spec_hash()[:12]}"
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
        """Open an existing run by directory path, run id, or ``latest``."""
        candidates = [Path(ref), root / ref]
        if ref == "latest":
            runs = sorted((p for p in root.glob("*/spec.json")), key=lambda p: p.stat().st_mtime)
            if not runs:
                raise StoreError(f"no runs under {root}")
            candidates = [runs[-1].parent]
        for path in candidates:
            if (path / "spec.json").is_file():
                return cls(path)
        raise StoreError(f"no run {ref!r} (looked for a run directory or an id under {root})")

    def experiment(self) -> Experiment:
        """The stored spec."""
        return Experiment.model_validate_json((self.dir / "spec.json").read_text())

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``name`` (e.g. provenance.json) atomically; returns its path."""
        path = self.dir / name
        write_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=str))
        return path

    def read_json(self, name: str) -> Any:
        """Read a JSON file of the run."""
        return json.loads((self.dir / name).read_text())

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records, one line each, in a single write, then fsync."""
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        if not text:
            return
        self._drop_torn_tail()
        with open(self.records_path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def _drop_torn_tail(self) -> None:
        """Cut a partial last line left by a crash mid-write, so new records start clean."""
        if not self.records_path.exists():
            return
        data = self.records_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.records_path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)

    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Every complete record (a torn last line from a crash is skipped), optionally by kind."""
        if not self.records_path.exists():
            return
        with open(self.records_path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # the process died mid-write; that item was never completed
                record = json.loads(line)
                if kind is None or record.get("kind") == kind:
                    yield record

    def judgements(self, rubric: str | None = None) -> Iterator[dict[str, Any]]:
        """Judgements by the run's active judge (``provenance.json``) on one rubric (an ident;
        default: the primary rubric), or on every active rubric with ``rubric="*"``. A rescore
        with another judge or rubric switches which ones the summary and report use."""
        prov = self.read_json("provenance.json")
        active = set(prov.get("rubrics", {}).values()) | {prov["rubric"]}
        if prov.get("specificity_rubric"):
            active.add(prov["specificity_rubric"])
        wanted = active if rubric == "*" else {rubric or prov["rubric"]}
        for r in self.records("judgement"):
            if r["judge"] == prov["judge"] and r["rubric"] in wanted:
                yield r

    def done_keys(self, kind: str) -> dict[str, dict[str, Any]]:
        """Records of one kind by key: what a resumed run does not redo."""
        return {r["key"]: r for r in self.records(kind)}
