"""A deterministic offline judge implementing every shipped rubric without an API key.

It is what the toy world and the tests use, and what ``auto`` picks when no ANTHROPIC_API_KEY is
set. Its rules, per rubric (content words are words that are not stop words or punctuation):

- ``concept_presence`` (0–3), from the concept keywords: 0 no keyword; 1 one mention; 2 several
  mentions while keywords are under ``dominance`` (30%) of the content words; 3 at or above it.
  The default judge (``offline-semantic-v1``) also reads the text's meaning
  (:mod:`harness.judge.semantic`: sentence-embedding margin to the concept over a bank of other
  topics, thresholds calibrated on the toy world) and scores the higher of the two, so a text
  plainly about the concept in words outside the list scores 2; with no keywords it scores by
  meaning alone. ``offline-keyword-v1`` (``judge.kind="offline-keyword"``) counts keywords only.
- ``specificity`` (0–3), from the keywords and the ``<<highlighted>>`` token: 3 the highlighted
  token is a keyword; 2 a keyword within ``near`` (3) words of it; 1 a keyword elsewhere in the
  context; 0 none.
- ``fluency`` (0–2), from repetition: 2 when at least half the words are distinct and no word
  repeats 3+ times in a row; 1 when at least 30% are distinct and no run reaches 5; else 0.
- ``instruction`` (0–2), from the toy world's topic lexicon: 2 when the continuation's dominant
  topic is the prompt's; 1 when it mentions the prompt's topic at all; 0 otherwise. A prompt with
  no topic word cannot be judged offline and is unscored.

An item these rules cannot judge is unscored with its reason, never a 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise

from harness.judge.base import OFFLINE_JUDGES, Judgement, JudgeRequest, same_rules
from harness.judge.rubric import Rubric

__all__ = [
    "OFFLINE_JUDGES",
    "OFFLINE_RUBRICS",
    "STOPWORDS",
    "Lexicon",
    "OfflineJudge",
    "content_words",
    "same_rules",
    "words",
]

Lexicon = Mapping[str, frozenset[str]]  # topic → words that belong to that topic only

STOPWORDS = frozenset(
    "the a an of to in on and or is are was were it its at by for from with as this that "
    "be been so i you he she we they my your his her our their . , ? ! : ; < >".split()
)
_HIGHLIGHT = re.compile(r"<<(.+?)>>")
Outcome = tuple[int | None, str]


def words(text: str) -> list[str]:
    """Lower-case words and punctuation marks (the toy tokenizer splits text the same way)."""
    return re.findall(r"\w+|[^\w\s]", text.lower())


def content_words(text: str) -> list[str]:
    """The words of ``text`` without stopwords and punctuation."""
    return [w for w in words(text) if w not in STOPWORDS]


_content = content_words


def _concept(req: JudgeRequest, dominance: float = 0.3, margin: float | None = None) -> Outcome:
    """Keyword level, raised to the semantic level when ``margin`` (the semantic signal) is
    given and supports more."""
    if not req.keywords and margin is None:
        return None, "no concept keywords given; the offline keyword judge cannot score"
    keywords = {k.lower() for k in req.keywords}
    content = _content(req.text)
    hits = [w for w in content if w in keywords]
    share = len(hits) / len(content) if content else 0.0
    level = 0 if not hits else 1 if len(hits) == 1 else 2 if share < dominance else 3
    said = f"{len(hits)} keyword hits in {len(content)} content words ({share:.0%})"
    if margin is None:
        return level, said
    from harness.judge.semantic import semantic_level

    meaning = semantic_level(margin) if content else 0
    said += f"; semantic margin {margin:+.3f} (level {meaning})"
    return max(level, meaning), said


def _specificity(req: JudgeRequest, near: int = 3) -> Outcome:
    if not req.keywords:
        return None, "no concept keywords given; the offline judge cannot score"
    match = _HIGHLIGHT.search(req.text)
    if match is None:
        return None, "no <<highlighted>> token in the context"
    keywords = {k.lower() for k in req.keywords}
    before = words(req.text[: match.start()])
    token = words(match.group(1))
    after = words(req.text[match.end() :])
    if any(w in keywords for w in token):
        return 3, "the highlighted token is a concept keyword"
    window = before[-near:] + after[:near]
    if any(w in keywords for w in window):
        return 2, f"a concept keyword within {near} words of the highlighted token"
    if any(w in keywords for w in before + after):
        return 1, "a concept keyword elsewhere in the context"
    return 0, "no concept keyword in the context"


def _fluency(req: JudgeRequest) -> Outcome:
    ws = words(req.text)
    if not ws:
        return 0, "empty continuation"
    distinct = len(set(ws)) / len(ws)
    run = longest = 1
    for a, b in pairwise(ws):
        run = run + 1 if a == b else 1
        longest = max(longest, run)
    level = 2 if distinct >= 0.5 and longest < 3 else 1 if distinct >= 0.3 and longest < 5 else 0
    return level, f"{distinct:.0%} distinct words, longest repeat run {longest}"


def _topic_counts(text: str, lexicon: Lexicon) -> dict[str, int]:
    content = _content(text)
    return {name: sum(w in lex for w in content) for name, lex in lexicon.items()}


def _instruction(req: JudgeRequest, lexicon: Lexicon) -> Outcome:
    if not lexicon:
        return None, "the offline judge was given no topic lexicon"
    prompt_topics = _topic_counts(req.prompt, lexicon)
    if not any(prompt_topics.values()):
        return None, "the offline judge cannot tell the prompt's topic"
    topic = max(prompt_topics, key=prompt_topics.__getitem__)
    cont = _topic_counts(req.text, lexicon)
    if cont[topic] and cont[topic] == max(cont.values()):
        return 2, f"the continuation stays on the prompt's topic ({topic})"
    if cont[topic]:
        return 1, f"the continuation mentions the prompt's topic ({topic}) but drifts"
    return 0, f"the continuation leaves the prompt's topic ({topic})"


_RULES: dict[str, Callable[[JudgeRequest, Lexicon], Outcome]] = {
    "concept_presence": lambda req, _: _concept(req),
    "specificity": lambda req, _: _specificity(req),
    "fluency": lambda req, _: _fluency(req),
    "instruction": _instruction,
}


OFFLINE_RUBRICS = tuple(sorted(_RULES))  # the rubric names the offline judge implements


class OfflineJudge:
    """The offline judge for one rubric: ``offline-semantic-v1`` (keywords and meaning) or, with
    ``semantic=False``, ``offline-keyword-v1`` (keywords only)."""

    deterministic = True  # the same text gets the same verdict: asking again cannot help

    def __init__(
        self, rubric: Rubric, lexicon: Lexicon | None = None, semantic: bool = True
    ) -> None:
        """``lexicon``: topic → its own words, for the instruction rubric (the toy world's is
        :func:`harness.toy.lexicon.topic_lexicon`); without one, instruction is unscored.
        ``semantic``: the concept rubric also reads meaning (the other rubrics are the same)."""
        self.semantic = semantic
        self.name = OFFLINE_JUDGES[0] if semantic else OFFLINE_JUDGES[1]
        if rubric.name not in _RULES:
            raise ValueError(
                f"the offline judge has no rules for rubric {rubric.name!r}; "
                f"it implements {sorted(_RULES)}"
            )
        self.rubric = rubric
        self.lexicon: Lexicon = lexicon or {}
        self._rule = _RULES[rubric.name]

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        """Score each request on the rubric's scale, or leave it unscored with the reason."""
        out = []
        margins = self._margins(requests)
        for i, req in enumerate(requests):
            if margins is not None:
                score, explanation = _concept(req, margin=margins[i])
            else:
                score, explanation = self._rule(req, self.lexicon)
            prompt = self.rubric.render(concept=req.concept, text=req.text, prompt=req.prompt)
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

    def _margins(self, requests: Sequence[JudgeRequest]) -> list[float | None] | None:
        """The semantic margin of each request (concept rubric of the semantic judge only)."""
        if not (self.semantic and self.rubric.name == "concept_presence"):
            return None
        from harness.judge.semantic import concept_margins

        out: list[float | None] = [None] * len(requests)  # None: nothing to compare with
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for i, req in enumerate(requests):
            if req.concept.strip() or any(k.strip() for k in req.keywords):
                groups.setdefault((req.concept, req.keywords), []).append(i)
        for (concept, keywords), idx in groups.items():
            values = concept_margins([requests[i].text for i in idx], concept, keywords)
            for i, v in zip(idx, values, strict=True):
                out[i] = float(v)
        return out
