"""The offline concept judge's semantic signal: how plainly a text is about a concept, read from
sentence embeddings, with no word list to miss a word.

A text is compared with the concept's *references* (its description and, when the spec gives
them, its keywords) and with a fixed bank of everyday *anchor* topics; the **margin** is the
text's best cosine similarity to a reference minus its best similarity to an anchor. Anchors
close to the concept itself (cosine ≥ ``ANCHOR_EXCLUSION`` to a reference) are dropped, so a
concept is never measured against itself. A positive margin means the text is nearer the concept
than anything else in the bank; the embedder is the bundled all-MiniLM-L6-v2 whatever
``HARNESS_EMBEDDER`` says, because the thresholds below are calibrated on it.

**Calibration** (:func:`calibrate`, re-run by ``tests/test_judge_semantic.py``): on the toy
world, each of its eight topics in turn is the concept (a plain description plus every other one
of its keywords, so half its vocabulary is *not* in the list); 60 seeded corpus sentences of that
topic are positives and 60 of each other topic negatives. ``LEVEL_1`` is the 95th percentile of
the negatives' margins and ``LEVEL_2`` the 99th: a margin at or above ``LEVEL_2`` is "clearly
about the concept" (score 2) with at most 1% false positives on the toy world, at or above
``LEVEL_1`` a mention (score 1, at most 5%). The semantic signal never gives 3: "the concept
dominates" is still counted by keywords. docs/judges.md has the per-topic recall.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "ANCHORS",
    "CALIBRATION_TOPICS",
    "LEVEL_1",
    "LEVEL_2",
    "Calibration",
    "calibrate",
    "concept_margins",
    "semantic_level",
]

LEVEL_1 = 0.008  # margin of a mention (95th percentile of off-topic toy sentences)
LEVEL_2 = 0.097  # margin of "clearly about the concept" (99th percentile)
ANCHOR_EXCLUSION = 0.5  # an anchor this close to the description is the concept's own
ADOPT_NEAREST, ADOPT_LEAD = 0.3, 0.1

ANCHORS = (
    "food and cooking", "the weather", "outer space and astronomy", "music", "sports",
    "feelings and emotions", "politics and government", "money and finance", "animals and pets",
    "computers and technology", "health and medicine", "travel and tourism", "cars and driving",
    "school and education", "family and friends", "work and jobs", "history", "science",
    "art and painting", "books and reading", "movies and television", "clothes and fashion",
    "the law and crime", "war and the military", "religion", "nature and plants",
    "the sea and boats", "buildings and architecture", "shopping", "games and puzzles",
    "mathematics and numbers", "language and grammar", "time and dates", "home and furniture",
    "cities and places", "water and rivers", "colours", "the human body", "love and romance",
    "danger and harm",
)  # fmt: skip

# toy topic → the plain description calibration uses as its concept
CALIBRATION_TOPICS = {
    "golden_gate": "Golden Gate Bridge",
    "cooking": "cooking",
    "weather": "weather",
    "space": "outer space",
    "music": "music",
    "sport": "sport",
    "emotion": "emotions",
    "requests": "jailbreak request",
}


def _embedder():  # type: ignore[no-untyped-def]
    from harness.engine.embedding import DEFAULT_EMBEDDER, get_embedder

    return get_embedder(DEFAULT_EMBEDDER)


@lru_cache(maxsize=256)
def _references(concept: str, keywords: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(the concept's reference embeddings, the competing anchors'). Anchors that describe the
    concept itself join its references: those within ``ANCHOR_EXCLUSION`` of its description,
    and the single nearest one when it clearly leads (≥ ``ADOPT_NEAREST`` and ``ADOPT_LEAD``
    ahead of the next), so that "space" is read as "outer space and astronomy" rather than
    measured against it. Anchors that close to a keyword only (a "golden" keyword is near
    "colours") compete with neither side."""
    emb = _embedder()
    refs = emb.embed([t for t in (concept, *keywords) if t.strip()])
    anchors = emb.embed(list(ANCHORS))
    sims = anchors @ refs.T
    described = sims[:, 0] if concept.strip() else sims.max(axis=1)
    adopt = described >= ANCHOR_EXCLUSION
    first, second = np.argsort(-described)[:2]
    if described[first] >= ADOPT_NEAREST and described[first] - described[second] >= ADOPT_LEAD:
        adopt[first] = True
    compete = ~adopt & (sims.max(axis=1) < ANCHOR_EXCLUSION)
    return np.concatenate([refs, anchors[adopt]]), anchors[compete]


_STOP = frozenset("the a an of to in on and or is are was were it . , ? ! : ;".split())


def _distinct(text: str) -> str:
    """The text's words, each once, in the order they first appear: steered text that repeats
    itself ("dark satellite dark satellite …") reads as what it repeats."""
    seen: dict[str, None] = {}
    for w in re.findall(r"\w+|[^\w\s]", text.lower()):
        seen.setdefault(w, None)
    return " ".join(seen)


def concept_margins(texts: Sequence[str], concept: str, keywords: Sequence[str] = ()) -> np.ndarray:
    """Each text's margin: best similarity to the concept's references − best to a competing
    anchor, the higher of the text's and of its distinct words' (see :func:`_distinct`)."""
    if not texts:
        return np.zeros(0, dtype=np.float32)
    refs, anchors = _references(concept, tuple(k for k in keywords if k.strip()))
    # a single repeated word is no sentence: its view would be one noisy word embedding
    views = [
        *texts,
        *(
            d if len(set(d.split()) - _STOP) >= 2 else t
            for t, d in zip(texts, map(_distinct, texts), strict=True)
        ),
    ]
    emb = _embedder().embed(views)
    near = (emb @ refs.T).max(axis=1)
    other = (emb @ anchors.T).max(axis=1) if len(anchors) else np.zeros(len(views))
    margin = (near - other).reshape(2, len(texts)).max(axis=0)
    return np.asarray(margin, dtype=np.float32)


def semantic_level(margin: float) -> int:
    """The concept-presence score the semantic signal alone supports (0, 1 or 2)."""
    return 2 if margin >= LEVEL_2 else 1 if margin >= LEVEL_1 else 0


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` measured: the thresholds and, per topic, the share of its own
    sentences at each level and of other topics' sentences wrongly at level ≥ 1 / 2."""

    level_1: float
    level_2: float
    n_positive: int
    n_negative: int
    per_topic: dict[str, dict[str, float]]


def calibrate(n_per_topic: int = 60, seed: int = 0) -> Calibration:
    """Re-derive ``LEVEL_1``/``LEVEL_2`` on the toy world (see the module's docstring)."""
    from harness.toy.corpus import TOPICS, render_sentence

    rng = random.Random(seed)
    sentences = {t.name: [render_sentence(t, rng) for _ in range(n_per_topic)] for t in TOPICS}
    margins: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for topic in TOPICS:
        keywords = topic.keywords[::2]
        own = concept_margins(sentences[topic.name], CALIBRATION_TOPICS[topic.name], keywords)
        others = [s for name, ss in sentences.items() if name != topic.name for s in ss]
        margins[topic.name] = (
            own,
            concept_margins(others, CALIBRATION_TOPICS[topic.name], keywords),
        )
    negatives = np.concatenate([neg for _, neg in margins.values()])
    level_1 = float(np.percentile(negatives, 95))
    level_2 = float(np.percentile(negatives, 99))
    per_topic = {
        name: {
            "recall_1": float(np.mean(pos >= level_1)),
            "recall_2": float(np.mean(pos >= level_2)),
            "false_1": float(np.mean(neg >= level_1)),
            "false_2": float(np.mean(neg >= level_2)),
        }
        for name, (pos, neg) in margins.items()
    }
    return Calibration(
        level_1=level_1,
        level_2=level_2,
        n_positive=sum(len(p) for p, _ in margins.values()),
        n_negative=len(negatives),
        per_topic=per_topic,
    )
