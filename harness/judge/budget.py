"""A spending limit on paid judge calls: checked against the plan's estimate before compute,
and kept as a ledger while judging, so that a run stops cleanly (everything judged so far is
stored, and a rerun resumes) before it spends more than it may.

The limit is per invocation: ``JudgeSettings(max_cost_usd=...)`` or ``--max-cost`` (the flag
wins), else :data:`DEFAULT_MAX_COST_USD`. Estimates use ``harness plan``'s figure of about 300
input and 80 output tokens a call; the ledger counts the tokens each reply reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.errors import HarnessError

__all__ = ["DEFAULT_MAX_COST_USD", "Budget", "BudgetReached", "OverBudget"]

DEFAULT_MAX_COST_USD = 10.0  # an interactive run; nightly and CI pass their own --max-cost


class OverBudget(HarnessError):
    """The plan's estimate exceeds the budget: refused before any compute."""

    exit_code = 2


class BudgetReached(HarnessError):
    """The ledger reached the budget while judging: the run stops, everything so far stored."""


@dataclass
class Budget:
    """What this invocation may spend on judge calls, and what it has spent."""

    limit_usd: float
    per_call_usd: float  # the estimate of one call, to stop before a chunk would pass the limit
    spent_usd: float = 0.0

    def charge(self, costs: Iterable[float]) -> None:
        """Add the cost of judgements just made (cached ones cost 0)."""
        self.spent_usd += sum(costs)

    def allow(self, calls: int) -> None:
        """Raise :class:`BudgetReached` when ``calls`` more calls would pass the limit."""
        if calls and self.spent_usd + calls * self.per_call_usd > self.limit_usd:
            raise BudgetReached(
                f"judge budget reached: ${self.spent_usd:.4f} spent of ${self.limit_usd:.2f}, and "
                f"{calls} more call(s) (about ${calls * self.per_call_usd:.4f}) would pass it; "
                "everything judged so far is stored; run again (with a higher --max-cost) to "
                "go on"
            )
