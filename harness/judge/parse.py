"""Read a verdict from a judge's reply: the last ``Score: N`` line, checked against the scale."""

from __future__ import annotations

import re
from typing import NamedTuple

from harness.judge.rubric import Rubric

__all__ = ["Verdict", "parse_verdict"]

_SCORE = re.compile(r"score\s*[:=]\s*\**\s*(-?\d+(?:\.\d+)?)", re.I)


class Verdict(NamedTuple):
    """A parsed score, or None with the reason it could not be read."""

    score: int | None
    problem: str | None


def parse_verdict(reply: str, rubric: Rubric) -> Verdict:
    """The last verdict in ``reply``; earlier ones (quoted from the judged text) are ignored."""
    matches = _SCORE.findall(reply)
    if not matches:
        return Verdict(None, "no verdict in the reply")
    raw = matches[-1]
    value = float(raw)
    if not value.is_integer():
        return Verdict(None, f"verdict {raw} is not a whole number")
    score = int(value)
    if not rubric.low <= score <= rubric.high:
        return Verdict(None, f"verdict {score} is outside the scale {rubric.low}–{rubric.high}")
    return Verdict(score, None)
