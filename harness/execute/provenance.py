"""Provenance of a run: code version, package versions, device (never environment secrets)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "collect_provenance", "git_state"]

PACKAGES = (
    "harness",
    "torch",
    "transformer-lens",
    "sae-lens",
    "mlflow",
    "anthropic",
    "numpy",
    "scipy",
    "pandas",
    "pydantic",
)


def git_state(where: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout containing ``where``; (None, None) outside one."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def collect_provenance(device: str, judge: str, rubric: str) -> dict[str, Any]:
    """Everything a report needs to say where its numbers came from."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit, dirty = git_state(Path(__file__).resolve().parent)
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "judge": judge,
        "rubric": rubric,
    }
