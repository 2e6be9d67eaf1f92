"""Read a verdict from a judge's reply: the last ``Score: N``, where N must be an integer on the
rubric's scale and nothing else (``2.0``, ``2/3``, ``two`` are unreadable, never a score)."""

from __future__ import annotations

import re
from typing import NamedTuple

from harness.judge.rubric import Rubric

__all__ = ["Verdict", "parse_verdict"]

_SCORE = re.compile(r"\bscore\s*[:=]\s*\**\s*([^\s*]+)", re.I)
_INTEGER = re.compile(r"[+-]?\d+")


class Verdict(NamedTuple):
    """A parsed score, or None with the reason it could not be read."""

    score: int | None
    problem: str | None


def parse_verdict(reply: str, rubric: Rubric) -> Verdict:
    """The last verdict in ``reply``; earlier ones (quoted from the judged text) are ignored."""
    matches = _SCORE.findall(reply)
    if not matches:
        return Verdict(None, "no verdict in the reply")
    raw = matches[-1].rstrip(".,;:!)]")  # "Score: 2." ends a sentence; "2.0", "2/3" do not pass
    if not _INTEGER.fullmatch(raw):
        return Verdict(None, f"verdict {raw[:20]!r} is not a whole number on the scale")
    score = int(raw)
    if not rubric.low <= score <= rubric.high:
        return Verdict(None, f"verdict {score} is outside the scale {rubric.low}–{rubric.high}")
    return Verdict(score, None)
