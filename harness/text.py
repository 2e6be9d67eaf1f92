"""Text from models, judges and users made safe to show: no terminal control characters."""

from __future__ import annotations

import re

__all__ = ["signed", "strip_control"]

# C0 controls except tab/newline/carriage return, DEL, C1 controls (ESC sequences, bells, …)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_control(text: str) -> str:
    """``text`` without terminal control characters (an ANSI escape loses its ESC, so it shows
    as plain text instead of recolouring or rewriting the reader's terminal)."""
    return _CONTROL.sub("", text)


def signed(value: float, digits: int = 3) -> str:
    """``+0.123``; a non-zero value that would round to ``±0.000`` in scientific notation
    (``-2.1e-04``), so a difference is never printed as ``-0.000``."""
    text = f"{value:+.{digits}f}"
    if value != value or float(text) != 0:  # NaN, or visible at this precision
        return text
    return "0" if value == 0 else f"{value:+.1e}"
