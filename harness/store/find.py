"""Finding a run directory from what a user types: a directory, a run id, ``latest`` (the run
that finished most recently) or ``latest-any`` (the run started most recently), nightly runs
(``<root>/nightly/<night>/<run>``) included."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from harness.errors import StoreError

__all__ = ["LATEST", "LATEST_ANY", "find_run"]

LATEST = "latest"  # the run that finished most recently
LATEST_ANY = "latest-any"  # the run started most recently, finished or not


def _started(run_dir: Path) -> float:
    """When the run was last started (``status.json``), else when its spec was written."""
    try:
        return float(json.loads((run_dir / "status.json").read_text())["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return (run_dir / "spec.json").stat().st_mtime


def find_run(ref: str, root: Path, status: Callable[[Path], str]) -> Path:
    """The run directory ``ref`` names under ``root``; ``status(dir)`` says a run's status
    (``finished``, ``failed``, ``killed`` …), read only for ``latest``."""
    candidates = [Path(ref), root / ref]
    if ref in (LATEST, LATEST_ANY):
        candidates = [_latest(root, status if ref == LATEST else None)]
    for path in candidates:
        if (path / "spec.json").is_file():
            return path
    raise StoreError(f"no run {ref!r} (looked for a run directory or an id under {root})")


def _latest(root: Path, status: Callable[[Path], str] | None) -> Path:
    """The newest run under ``root`` by start time; with ``status``, the newest finished."""
    patterns = ("*/spec.json", "nightly/*/*/spec.json")
    runs = sorted((p.parent for pattern in patterns for p in root.glob(pattern)), key=_started)
    if not runs:
        raise StoreError(f"no runs under {root}")
    if status is None:
        return runs[-1]
    for run_dir in reversed(runs):
        if status(run_dir) == "finished":
            return run_dir
    raise StoreError(
        f"no finished run under {root}; the newest, {runs[-1].name}, is {status(runs[-1])} "
        f"(name it, or say {LATEST_ANY!r} for the newest run whatever its status)"
    )
