"""Work items and their keys: what every study kind plans, and how conditions are named.

A work item's key hashes everything that changes its output (model, SAE, feature reference, the
exact level, prompt, decoding settings, seed) and nothing runtime-only (device, batch size,
concurrency, output paths), so the same item has the same key in every run of the same spec: that
is what resume and "never pay twice" match on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BASELINE",
    "ItemKey",
    "WorkItem",
    "condition_name",
    "content_key",
    "make_item",
    "set_condition",
    "split_condition",
]

BASELINE = "baseline"
ItemKey = tuple[int, str, str, str, int]  # (sae position, study, condition, prompt set, index)


def content_key(payload: dict[str, Any]) -> str:
    """A stable 24-hex-digit hash of a JSON-able payload (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _exact(value: float) -> str:
    """The shortest text that reads back as exactly ``value`` (``10``, ``2.5``, ``1.0000001``):
    two different levels never share a name."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def condition_name(level: float, unit: str) -> str:
    """How a clamp level is named in records and tables: ``10x`` or ``v=3.5``."""
    return f"{_exact(level)}x" if unit == "max_activation" else f"v={_exact(level)}"


def split_condition(condition: str) -> tuple[str, str]:
    """``neutral:10x`` → (``neutral``, ``10x``); a target-prompt condition has no prefix."""
    if ":" in condition:
        prompt_set, cond = condition.split(":", 1)
        return prompt_set, cond
    return "target", condition


def condition_order(condition: str) -> tuple[str, int, float, str]:
    """A sort key that puts levels in numeric order (``0x, 1x, 2x, 10x``, ``v=-1, v=3.5``) within
    each prompt set, other conditions (baseline, ablations, controls) after them by name."""
    prompt_set, cond = split_condition(condition)
    text = cond.removeprefix("v=").removesuffix("x")
    try:
        return prompt_set, 0, float(text), cond
    except ValueError:
        return prompt_set, 1, 0.0, cond


def set_condition(prompt_set: str, condition: str) -> str:
    """The stored condition of ``condition`` on ``prompt_set`` (``neutral:10x``; target bare)."""
    return condition if prompt_set == "target" else f"{prompt_set}:{condition}"


@dataclass(frozen=True)
class WorkItem:
    """One generation to produce (and then judge).

    ``condition`` carries the prompt set for non-target prompts (``neutral:10x``), so summaries
    group target and neutral prompts apart.
    """

    key: str
    sae: str
    study: str
    condition: str
    level: float | None  # None: the unclamped baseline
    prompt_index: int
    prompt: str
    prompt_set: str = "target"


def make_item(
    key: str,
    sae: str,
    study: str,
    prompt_set: str,
    condition: str,
    level: float | None,
    index: int,
    prompt: str,
) -> WorkItem:
    """A work item on ``prompt_set`` (its stored condition carries the set's name)."""
    return WorkItem(
        key, sae, study, set_condition(prompt_set, condition), level, index, prompt, prompt_set
    )
