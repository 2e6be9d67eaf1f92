"""The report's "Judges against humans" part: where annotators labelled items (``harness label
import``), each model judge's agreement with each annotator, the annotators' agreement with
each other, a confusion matrix of the active judge against each annotator, and whether the
judge is validated on each rubric (κ ≥ ``judge.min_kappa_vs_humans``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.judge_agreement import MIN_ITEMS, Agreement, item_texts, judge_agreement
from harness.analysis.judge_validity import confusion, human_pairs, is_human, validity
from harness.store import RunStore
from harness.views.report.markdown_table import cell, fmt_estimate, table

__all__ = ["human_section", "model_pairs"]

_COLUMNS = ["rubric", "judge", "annotator", "exact agreement", "κ", "weighted κ", "Spearman ρ"]


def model_pairs(pairs: list[Agreement]) -> list[Agreement]:
    """The pairs of two model judges (no annotator)."""
    return [a for a in pairs if not is_human(a.judges[0]) and not is_human(a.judges[1])]


def _row(a: Agreement) -> list[str]:
    return [
        cell(a.rubric),
        cell(a.first),
        cell(a.second),
        *(
            fmt_estimate(e.value, e.ci_low, e.ci_high, e.n)
            for e in (a.exact, a.kappa, a.weighted_kappa, a.spearman)
        ),
    ]


def human_section(store: RunStore) -> list[str]:
    """Judges against human labels; [] when the run has none."""
    judgements = list(store.records("judgement"))
    humans = sorted({j["judge"] for j in judgements if is_human(j["judge"])})
    if not humans:
        return []
    texts = item_texts(store)
    pairs = judge_agreement(judgements, np.random.default_rng(0), texts=texts)
    versus = human_pairs(pairs)
    among = [a for a in pairs if is_human(a.judges[0]) and is_human(a.judges[1])]
    threshold = store.experiment().judge.min_kappa_vs_humans
    prov = store.read_json("provenance.json")
    active = str(prov.get("judge", ""))
    lines = [
        "### Judges against humans",
        "",
        f"Labels by {', '.join(humans)} (`harness label import`), on the items they labelled "
        f"(at least {MIN_ITEMS} in common; identical texts once), 95% bootstrap CIs over items. "
        "A judge is validated "
        f"on a rubric when its κ with every annotator is at least {threshold:g} "
        "(`judge.min_kappa_vs_humans`); verdicts resting on a judge that is not say so.",
        "",
    ]
    if versus:
        lines += [*table(_COLUMNS, [_row(a) for a in versus]), ""]
    else:
        lines += [f"No judge shares {MIN_ITEMS} or more labelled items with an annotator.", ""]
    if among:
        lines += ["Annotators with each other:", "", *table(_COLUMNS, [_row(a) for a in among]), ""]
    for rubric in sorted({a.rubric for a in versus}):
        v = validity(judgements, active, rubric, threshold, texts)
        if v is None:
            continue
        state = "validated" if v.validated else "**not validated**"
        lines += [
            f"{cell(active)} on {cell(rubric)}: {state} (lowest κ {v.kappa:.2f}, against "
            f"{cell(v.annotator)}; threshold {threshold:g}).",
            "",
        ]
        for human in humans:
            lines += _confusion_table(judgements, active, human, rubric)
    return lines


def _confusion_table(
    judgements: list[dict[str, Any]], judge: str, human: str, rubric: str
) -> list[str]:
    counts = confusion(judgements, judge, human, f"{rubric}@")
    if sum(counts.values()) < MIN_ITEMS:
        return []
    scores = sorted({s for pair in counts for s in pair})
    rows = [[f"judge {a}", *(str(counts.get((a, b), 0)) for b in scores)] for a in scores]
    return [
        f"Confusion on {cell(rubric)}: {cell(judge)} (rows) against {cell(human)} (columns).",
        "",
        *table(["", *(f"human {b}" for b in scores)], rows),
        "",
    ]
