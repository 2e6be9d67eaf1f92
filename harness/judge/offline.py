"""A deterministic offline judge: the concept-presence rubric scored from concept keywords.

It needs no API key, so the toy world and the tests run anywhere. Its levels follow the rubric:
0 no keyword; 1 one mention; 2 several mentions while most of the text is about something else;
3 the keywords make up at least ``dominance`` of the content words.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.judge.base import Judgement, JudgeRequest
from harness.judge.rubric import Rubric
from harness.toy.corpus import words

__all__ = ["STOPWORDS", "OfflineConceptJudge"]

STOPWORDS = frozenset(
    "the a an of to in on and or is are was were it its at by for from with as this that "
    "be been so i you he she we they my your his her our their . , ? ! : ;".split()
)


class OfflineConceptJudge:
    """Keyword-based concept-presence judge (``offline-keyword-v1``)."""

    name = "offline-keyword-v1"

    def __init__(self, rubric: Rubric, dominance: float = 0.3) -> None:
        self.rubric = rubric
        self.dominance = dominance

    def _score(self, request: JudgeRequest) -> tuple[int | None, str]:
        if not request.keywords:
            return None, "no concept keywords given; the offline judge cannot score"
        keywords = {k.lower() for k in request.keywords}
        content = [w for w in words(request.text) if w not in STOPWORDS]
        hits = [w for w in content if w in keywords]
        share = len(hits) / len(content) if content else 0.0
        if not hits:
            level = 0
        elif len(hits) == 1:
            level = 1
        elif share < self.dominance:
            level = 2
        else:
            level = 3
        return level, f"{len(hits)} keyword hits in {len(content)} content words ({share:.0%})"

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        """Score each request on the rubric's 0–3 scale (unscored if it has no keywords)."""
        out = []
        for req in requests:
            score, explanation = self._score(req)
            prompt = self.rubric.render(concept=req.concept, text=req.text)
            out.append(
                Judgement(
                    score=score,
                    unscored_reason=None if score is not None else explanation,
                    judge=self.name,
                    rubric=self.rubric.ident,
                    prompt=prompt,
                    raw_reply=explanation if score is None else f"{explanation}\nScore: {score}",
                )
            )
        return out
