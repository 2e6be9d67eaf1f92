"""How the offline judge does on natural text it was not calibrated on.

The semantic offline judge's thresholds are fitted on the toy corpus (``semantic.calibrate``).
This evaluation set, ``eval/golden_gate_natural.jsonl``, is kept apart from that calibration: 40
English sentences written for this repository (not drawn from the toy corpus or any dataset) —
20 about the Golden Gate Bridge that avoid every one of the concept's keywords, 12 near misses
(other bridges, other landmarks, other harbours, other sights of the same city) and 8 unrelated
sentences. ``evaluate`` scores them with a judge on the concept-presence rubric and reports recall
(on-concept sentences scored ≥ 2, and ≥ 1), the near misses' false-positive rates, and the AUC of
the semantic margin (on-concept against the rest). ``harness bench offline-judge`` prints it;
docs/judges.md has the figures, which ``tests/test_judge_semantic.py`` re-measures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.judge.base import JudgeRequest
from harness.judge.offline import OfflineJudge
from harness.judge.rubric import load_rubric
from harness.toy.corpus import concept_keywords

__all__ = ["EVAL_SET", "Evaluation", "evaluate"]

EVAL_SET = Path(__file__).parent / "eval" / "golden_gate_natural.jsonl"
CONCEPT = "Golden Gate Bridge"
KEYWORDS = concept_keywords("golden_gate")  # the toy world's, as a spec would give them


@dataclass(frozen=True)
class Evaluation:
    """A judge on the natural-text set: shares of each kind of sentence at each score."""

    judge: str
    n_on: int
    n_near: int
    n_unrelated: int
    recall_2: float  # on-concept sentences scored >= 2
    recall_1: float
    near_miss_fp_2: float  # near misses scored >= 2
    near_miss_fp_1: float
    unrelated_fp_1: float
    margin_auc: float  # semantic margin, on-concept vs the rest (NaN for the keyword judge)


def evaluate(semantic: bool = True, path: Path = EVAL_SET) -> Evaluation:
    """Score the set with the offline judge (``semantic=False``: the keyword judge)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    judge = OfflineJudge(load_rubric("concept_presence"), semantic=semantic)
    texts = [str(r["text"]).lower() for r in rows]
    verdicts = judge.judge(
        [JudgeRequest(text=t, concept=CONCEPT, keywords=KEYWORDS) for t in texts]
    )
    scores = np.array([v.score if v.score is not None else -1 for v in verdicts])
    kinds = np.array([r["kind"] for r in rows])
    on, near, other = kinds == "on-concept", kinds == "near-miss", kinds == "unrelated"
    auc = float("nan")
    if semantic:
        from harness.judge.semantic import concept_margins

        m = concept_margins(texts, CONCEPT, KEYWORDS)
        auc = float(np.mean([[a > b for b in m[~on]] for a in m[on]]))
    return Evaluation(
        judge=judge.name,
        n_on=int(on.sum()),
        n_near=int(near.sum()),
        n_unrelated=int(other.sum()),
        recall_2=float(np.mean(scores[on] >= 2)),
        recall_1=float(np.mean(scores[on] >= 1)),
        near_miss_fp_2=float(np.mean(scores[near] >= 2)),
        near_miss_fp_1=float(np.mean(scores[near] >= 1)),
        unrelated_fp_1=float(np.mean(scores[other] >= 1)),
        margin_auc=auc,
    )
