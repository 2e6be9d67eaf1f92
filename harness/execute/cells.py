"""Cells: the unit an executor schedules, and the store a remote worker writes a cell into.

A run plans into one cell per SAE × study, plus one per SAE for its quality measurement. A cell's
key hashes what names it within the run (the run directory already hashes the spec), and a
``cell`` record in the run store says its computed records are all stored, so no executor
schedules it again: a run started on one executor resumes on the other. Inside a cell, resume
is still per item (a worker receives the cell's stored records and redoes none of them).

A remote worker never writes the run store: it computes into a :class:`CellStore` (the cell's
stored records plus what it appends) and hands the appended records back to the driver, the
single writer of the store and of MLflow. Judging stays in the driver too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from harness.spec import Experiment, sae_label
from harness.studies.items import content_key

__all__ = [
    "QUALITY",
    "Cell",
    "CellStore",
    "cell_record",
    "plan_cells",
    "snapshot",
]

QUALITY = "sae_quality"  # the study name of an SAE's quality cell


@dataclass(frozen=True)
class Cell:
    """One SAE × study (``study_index`` None: the SAE's quality measurement)."""

    key: str
    sae: str
    sae_index: int
    study: str
    study_index: int | None

    @property
    def name(self) -> str:
        return f"{self.sae} · {self.study}"


def plan_cells(exp: Experiment, quality: bool) -> list[Cell]:
    """Every cell of ``exp`` in plan order (per SAE: its quality first, then the studies)."""
    cells = []
    for i, ref in enumerate(exp.saes):
        label = sae_label(ref)
        named: list[tuple[str, int | None]] = [(QUALITY, None)] if quality else []
        named += [(s.name, j) for j, s in enumerate(exp.studies)]
        for study, j in named:
            key = content_key({"what": "cell", "sae": label, "study": study})
            cells.append(Cell(key, label, i, study, j))
    return cells


def cell_record(cell: Cell) -> dict[str, Any]:
    """The record that marks ``cell`` as computed."""
    return {"kind": "cell", "key": cell.key, "sae": cell.sae, "study": cell.study}


def snapshot(records: Iterable[dict[str, Any]], cell: Cell) -> dict[str, dict[str, Any]]:
    """What a worker needs of the store to resume ``cell``: the stored records of its SAE (of
    its study, or of none) by kind and key; judgements stay with the driver."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        kind = r.get("kind")
        if kind in ("judgement", "cell") or r.get("sae", cell.sae) != cell.sae:
            continue
        if cell.study != QUALITY and r.get("study", cell.study) != cell.study:
            continue
        out.setdefault(str(kind), {})[str(r.get("key"))] = r
    return out


class CellStore:
    """The run store as a worker sees it while computing one cell: the snapshot it was handed
    plus what it appended (kept in :attr:`appended`, in order, for the driver to store)."""

    def __init__(
        self,
        run_id: str,
        experiment: Experiment,
        stored: Mapping[str, dict[str, dict[str, Any]]],
        provenance: dict[str, Any],
    ) -> None:
        self._run_id = run_id
        self._experiment = experiment
        self._by_kind = {kind: dict(recs) for kind, recs in stored.items()}
        self._provenance = provenance
        self.appended: list[dict[str, Any]] = []

    @property
    def run_id(self) -> str:
        return self._run_id

    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        if kind is None:
            return iter([r for recs in self._by_kind.values() for r in recs.values()])
        return iter(list(self._by_kind.get(kind, {}).values()))

    def judgements(self, rubric: str | None = None) -> Iterator[dict[str, Any]]:
        return iter(())  # a worker does not judge

    def done_keys(self, kind: str) -> Mapping[str, dict[str, Any]]:
        return MappingProxyType(self._by_kind.setdefault(kind, {}))

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        n = 0
        for r in records:
            by_key = self._by_kind.setdefault(str(r["kind"]), {})
            if r["key"] in by_key:
                continue
            by_key[r["key"]] = r
            self.appended.append(r)
            n += 1
        return n

    def read_json(self, name: str) -> Any:
        if name != "provenance.json":
            raise FileNotFoundError(f"a worker's cell store has no {name}")
        return self._provenance

    def experiment(self) -> Experiment:
        return self._experiment
