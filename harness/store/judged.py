"""Which judgements a run's views read: the active judge of each study (a rescore may leave a
study with the judge that scored it), or one named judge for a gate that reads runs alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from harness.errors import StoreError


class RunStore(Protocol):
    """What reading judgements needs of a run store (:class:`harness.store.RunStore`)."""

    @property
    def run_id(self) -> str: ...
    def read_json(self, name: str) -> Any: ...
    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]: ...


__all__ = ["active_judgements", "provenance_as", "study_reading"]


def study_reading(prov: dict[str, Any], study: str) -> tuple[str, str]:
    """(judge, primary rubric ident) a run reads ``study`` with: provenance's, unless a rescore
    left the study with the judge that scored it (``study_judging``)."""
    own = (prov.get("study_judging") or {}).get(study) or {}
    return own.get("judge", prov["judge"]), own.get("rubric", prov["rubric"])


def active_judgements(
    store: RunStore,
    rubric: str | None = None,
    every_attempt: bool = False,
    judge: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Judgements by the run's active judge on one rubric (an ident; default: the primary
    rubric), or on every active rubric with ``rubric="*"``. The active judge and primary
    rubric are ``provenance.json``'s, except for a study listed in its ``study_judging``
    (a rescore whose judge did not judge all of that study's items leaves the study with the
    judge that did). ``judge``: read that judge's judgements instead (a gate judging two runs
    alike), each study on its active rubrics.

    One judgement per item and rubric: its scored attempt if any, else its latest (an
    unscored judgement asked again leaves the earlier attempts in the store, for the cost
    and the audit; ``every_attempt`` yields them all)."""
    prov = store.read_json("provenance.json")
    active = set(prov.get("rubrics", {}).values()) | {prov["rubric"]}
    active |= set((prov.get("study_rubrics") or {}).values())
    if prov.get("specificity_rubric"):  # runs stored before study rubrics had a registry
        active.add(prov["specificity_rubric"])
    reading: dict[str, tuple[str, set[str]]] = {}

    def read_by(study: str) -> tuple[str, set[str]]:
        if study not in reading:
            by, primary = study_reading(prov, study)
            if rubric == "*":
                wanted = (active - {prov["rubric"]}) | {primary}
            else:
                wanted = {rubric or primary}
            reading[study] = (judge or by, wanted)
        return reading[study]

    mine = []
    for r in store.records("judgement"):
        by, wanted = read_by(str(r.get("study")))
        if r["judge"] == by and r["rubric"] in wanted:
            mine.append(r)
    if every_attempt:
        yield from mine
        return
    final: dict[tuple[str, str], dict[str, Any]] = {}
    for r in mine:
        held = final.get((r["of"], r["rubric"]))
        if held is None or held["score"] is None:
            final[(r["of"], r["rubric"])] = r
    chosen = {id(r) for r in final.values()}
    yield from (r for r in mine if id(r) in chosen)


def provenance_as(store: RunStore, judge: str) -> dict[str, Any]:
    """The run's provenance as if ``judge`` had judged it: that judge for every study, with the
    rubric versions it used (the run itself is unchanged)."""
    prov = store.read_json("provenance.json")
    used: dict[str, str] = {}
    for r in store.records("judgement"):
        if r["judge"] == judge:
            used[str(r["rubric"]).split("@", 1)[0]] = r["rubric"]
    if not used:
        raise StoreError(f"run {store.run_id} holds no judgements by {judge}")

    def ident(current: str) -> str:
        return used.get(current.split("@", 1)[0], current)

    prov.update(
        judge=judge,
        rubric=ident(prov["rubric"]),
        rubrics={n: ident(i) for n, i in (prov.get("rubrics") or {}).items()},
        study_rubrics={n: ident(i) for n, i in (prov.get("study_rubrics") or {}).items()},
        study_judging={},
    )
    return dict(prov)
