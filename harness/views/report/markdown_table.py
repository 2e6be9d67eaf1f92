"""Markdown table pieces: escaping generated text so it cannot break a table, and estimates."""

from __future__ import annotations

import html
import math
from typing import Any

from harness.text import strip_control

__all__ = ["cell", "fmt_estimate", "fmt_number", "fmt_row", "table"]


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]#|"})


def cell(text: object, limit: int = 160) -> str:
    """Make any value safe inside a Markdown table cell (escaped, one line, bounded length)."""
    s = " ".join(strip_control(str(text)).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s, quote=False).translate(_MD_SPECIAL)


def fmt_estimate(value: float, low: float, high: float, n: int, digits: int = 2) -> str:
    """``1.23 [0.90, 1.50] (n=16)``; no brackets when there is no CI; ``–`` when there is
    nothing to estimate."""
    if n == 0 or math.isnan(value):
        return "– (n=0)"
    if math.isnan(low) or math.isnan(high):
        return f"{fmt_number(value, digits)} (n={n})"
    return (
        f"{fmt_number(value, digits)} [{fmt_number(low, digits)}, {fmt_number(high, digits)}] "
        f"(n={n})"
    )


def fmt_number(value: float, digits: int = 2) -> str:
    """A number for a table: thousands separators and no decimals from 1,000 on (perplexity
    62,039 rather than 62038.90), and never ``-0.00``."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_row(row: dict[str, Any] | None) -> str:
    """A summary row (value, ci_low, ci_high, n) as :func:`fmt_estimate`; ``–`` when missing."""
    if row is None:
        return "–"
    return fmt_estimate(row["value"], row["ci_low"], row["ci_high"], row["n"])


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out
