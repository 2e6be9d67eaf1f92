"""Is a judge validated against humans? Where annotators' labels exist (judges named
``human:<annotator>``, from ``harness label import``), a model judge is validated on a rubric
when its Cohen's κ with every annotator who labelled at least ``MIN_ITEMS`` of the same items
reaches the spec's ``judge.min_kappa_vs_humans``; below it, verdicts resting on that judge's
scores say "judge not validated (κ = …)" instead of better/worse. Without labels nothing is
claimed either way (the report says no human labels exist)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.analysis.judge_agreement import Agreement, judge_agreement

__all__ = [
    "HUMAN",
    "Validity",
    "confusion",
    "human_agreements",
    "human_pairs",
    "is_human",
    "judgement_rows",
    "run_texts",
    "validity",
]

HUMAN = "human:"


def is_human(judge: str) -> bool:
    """Whether a judge name is an annotator's (``human:<name>``)."""
    return judge.startswith(HUMAN)


@dataclass(frozen=True)
class Validity:
    """A judge on one rubric against the humans: the lowest κ over annotators and who."""

    judge: str
    rubric: str
    kappa: float
    annotator: str
    validated: bool

    def note(self) -> str:
        """The words a verdict resting on an unvalidated judge uses instead of better/worse."""
        return f"judge not validated (κ = {self.kappa:.2f} vs {self.annotator})"


def human_pairs(pairs: list[Agreement]) -> list[Agreement]:
    """The pairs with exactly one human: a model judge against an annotator."""
    return [a for a in pairs if is_human(a.judges[0]) != is_human(a.judges[1])]


def run_texts(run: Any) -> dict[str, str]:
    """A loaded run's generation texts by item key (as :func:`item_texts` gives a store's)."""
    items = run.items
    if not len(items):
        return {}
    return {
        str(r["key"]): f"{r['prompt']}\x00{r['continuation']}" for r in items.to_dict("records")
    }


def judgement_rows(run: Any) -> list[dict[str, Any]]:
    """A loaded run's judgement records as dicts (an unscored item's score None, not NaN)."""
    recs = run.records
    if "kind" not in recs:
        return []
    js = recs[recs["kind"] == "judgement"]
    return [
        {**j, "score": None if j["score"] != j["score"] else j["score"]}
        for j in js.to_dict("records")
    ]


def human_agreements(
    judgements: list[dict[str, Any]], texts: Mapping[str, str] | None = None
) -> list[Agreement]:
    """Every model judge against every annotator (nothing without labels)."""
    if not any(is_human(str(j["judge"])) for j in judgements):
        return []
    return human_pairs(judge_agreement(judgements, np.random.default_rng(0), texts=texts))


def validity(
    judgements: list[dict[str, Any]],
    judge: str,
    rubric: str,
    threshold: float,
    texts: Mapping[str, str] | None = None,
) -> Validity | None:
    """``judge`` on rubric name ``rubric`` against every annotator, or None without labels."""
    pairs = [
        a
        for a in human_pairs(judge_agreement(judgements, np.random.default_rng(0), 200, texts))
        if a.rubric == rubric and judge in a.judges
    ]
    if not pairs:
        return None
    worst = min(pairs, key=lambda a: (np.nan_to_num(a.kappa.value, nan=-2.0), a.first))
    annotator = next(j for j in worst.judges if is_human(j))
    kappa = float(worst.kappa.value)
    return Validity(judge, rubric, kappa, annotator, bool(kappa >= threshold))


def confusion(
    judgements: list[dict[str, Any]], judge: str, human: str, ident_prefix: str
) -> dict[tuple[int, int], int]:
    """Counts of (judge's score, annotator's score) over the items both scored on a rubric
    (rubric idents starting ``ident_prefix``, e.g. ``concept_presence@``)."""
    scores: dict[str, dict[str, int]] = {judge: {}, human: {}}
    for j in judgements:
        if j["judge"] in scores and j["score"] is not None and j["rubric"].startswith(ident_prefix):
            scores[j["judge"]][j["of"]] = int(j["score"])
    out: dict[tuple[int, int], int] = {}
    for key in sorted(set(scores[judge]) & set(scores[human])):
        cell = (scores[judge][key], scores[human][key])
        out[cell] = out.get(cell, 0) + 1
    return out
