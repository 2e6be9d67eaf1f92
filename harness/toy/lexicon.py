"""The toy world's topic lexicon: what the offline judge's instruction rubric reads topics by."""

from __future__ import annotations

from functools import cache

from harness.judge.offline import Lexicon, content_words
from harness.toy.corpus import TOPICS

__all__ = ["topic_lexicon"]


@cache
def topic_lexicon() -> Lexicon:
    """Words that belong to exactly one toy topic (its templates, fillers and keywords)."""
    per_topic = {}
    for topic in TOPICS:
        text = " ".join([*topic.templates, *(v for vs in topic.slots.values() for v in vs)])
        per_topic[topic.name] = {w for w in content_words(text) if "{" not in w} | set(
            topic.keywords
        )
    return {
        name: frozenset(w for w in ws if sum(w in other for other in per_topic.values()) == 1)
        for name, ws in per_topic.items()
    }
