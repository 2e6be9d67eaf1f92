"""Which judge a gate reads: ``regress`` and ``compare`` pair judged scores of one judge.

A run holds the judgements of every judge it was judged or rescored with. Two runs judged by
different judges are compared on the scores of a judge that judged both (the baseline's active
judge first, then each other run's), read back with :meth:`harness.store.RunStore.read_as`.
When no judge judged all of them, they are compared as they are only where their judges score
by the same rules (:func:`harness.judge.offline.same_rules`: the two offline judges share every
rubric but concept presence); otherwise the gate refuses in one line, saying how to rescore.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import StoreError
from harness.store.judged import study_reading
from harness.views.notebook import LoadedRun, load_run

__all__ = ["GateJudges", "judge_alike"]


@dataclass(frozen=True)
class GateJudges:
    """The runs as the gate reads them, and the judge each one's scores come from."""

    runs: list[LoadedRun]
    judges: list[str]  # per run: the judge of its judged scores ("a, b" when studies differ)

    def label(self) -> str:
        """One phrase for reports: the judge, or each run's when they differ."""
        names = dict.fromkeys(self.judges)
        return ", ".join(names)


def _judged(run: LoadedRun) -> dict[str, set[tuple[str, str]]]:
    """judge → the (item, rubric name) pairs it judged in ``run`` (any attempt)."""
    recs = run.records
    out: dict[str, set[tuple[str, str]]] = {}
    if "kind" not in recs:
        return out
    for j in recs[recs["kind"] == "judgement"].to_dict("records"):
        out.setdefault(str(j["judge"]), set()).add((str(j["of"]), str(j["rubric"]).split("@")[0]))
    return out


def _active(run: LoadedRun) -> dict[str, str]:
    """study → the judge the run reads it with."""
    return {s.name: study_reading(run.provenance, s.name)[0] for s in run.experiment.studies}


def _needed(run: LoadedRun) -> set[tuple[str, str]]:
    """The (item, rubric name) pairs the run's active judges judged: what a judge must cover."""
    recs = run.records
    if "kind" not in recs:
        return set()
    by_study = _active(run)
    return {
        (str(j["of"]), str(j["rubric"]).split("@")[0])
        for j in recs[recs["kind"] == "judgement"].to_dict("records")
        if by_study.get(str(j["study"])) == j["judge"]
    }


def judge_alike(runs: Sequence[LoadedRun]) -> GateJudges:
    """The runs read with one judge that judged them all (the first run's active judge
    preferred, as the gate's judge), or as they are when their judges share the rules of every
    rubric both use; else a StoreError saying how to rescore."""
    actives = [_active(r) for r in runs]
    sets = [set(a.values()) for a in actives]
    if all(s == sets[0] for s in sets) and len(sets[0]) <= 1:
        return GateJudges(list(runs), [next(iter(s), "–") for s in sets])
    judged = [_judged(r) for r in runs]
    needed = [_needed(r) for r in runs]
    candidates = [j for a in actives for j in dict.fromkeys(a.values())]
    candidates += sorted({j for d in judged for j in d} - set(candidates))
    for judge in dict.fromkeys(candidates):
        if all(need <= d.get(judge, set()) for need, d in zip(needed, judged, strict=True)):
            read = [
                r if s == {judge} else load_run(r.directory, judge=judge)
                for r, s in zip(runs, sets, strict=True)
            ]
            return GateJudges(read, [judge] * len(runs))
    rubrics = {name for need in needed for _, name in need}
    from harness.judge.base import same_rules

    everyone = {j for s in sets for j in s}
    clash = sorted(
        name
        for name in rubrics
        if any(not same_rules(a, b, name) for a in everyone for b in everyone)
    )
    if not clash:
        return GateJudges(list(runs), [", ".join(sorted(s)) for s in sets])
    other = next(i for i, s in enumerate(sets) if s != sets[0])
    kind = _kind(sorted(sets[0])[0])
    raise StoreError(
        f"{runs[0].run_id} is judged by {', '.join(sorted(sets[0]))} and "
        f"{runs[other].run_id} by {', '.join(sorted(sets[other]))}, which score "
        f"{', '.join(dict.fromkeys(clash))} differently, and no judge judged both: "
        f"`harness rescore {runs[other].run_id} --judge {kind}` first, so both are read alike"
    )


def _kind(judge: str) -> str:
    """The ``--judge`` choice that gives ``judge``'s judgements."""
    if judge.startswith("offline-keyword"):
        return "offline-keyword"
    if judge.startswith("offline"):
        return "offline"
    return "anthropic"
