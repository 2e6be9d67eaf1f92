"""Rubrics: versioned text files with a header and a prompt template, identified by content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SpecError

__all__ = ["RUBRIC_DIR", "Rubric", "available_rubrics", "load_rubric"]

RUBRIC_DIR = Path(__file__).resolve().parent.parent / "rubrics"


@dataclass(frozen=True)
class Rubric:
    """A judging rubric: scale bounds, the meaning of each level, and the prompt template."""

    name: str
    version: str
    low: int
    high: int
    levels: dict[int, str]
    template: str
    content_hash: str

    def render(self, **fields: str) -> str:
        """The judge prompt for one item (``{concept}``, ``{text}`` … filled in)."""
        return self.template.format(**fields)

    @property
    def ident(self) -> str:
        """``name@version#hash8``: how reports and tags name the rubric."""
        return f"{self.name}@{self.version}#{self.content_hash[:8]}"


def available_rubrics(directory: Path = RUBRIC_DIR) -> list[str]:
    """Names of the rubric files shipped in ``directory``."""
    return sorted(p.stem for p in directory.glob("*.txt"))


def load_rubric(name: str, directory: Path = RUBRIC_DIR) -> Rubric:
    """Parse ``<directory>/<name>.txt``: ``key: value`` header lines, ``---``, then the template."""
    path = directory / f"{name}.txt"
    if not path.is_file():
        raise SpecError(
            f"unknown rubric {name!r}; valid: {available_rubrics(directory)}", field="judge.rubric"
        )
    raw = path.read_text()
    header, sep, template = raw.partition("\n---\n")
    if not sep:
        raise SpecError(f"rubric file {path} has no '---' line between header and template")
    meta: dict[str, str] = {}
    levels: dict[int, str] = {}
    for line in header.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key.startswith("level "):
            levels[int(key.removeprefix("level "))] = value
        elif key:
            meta[key] = value
    low, _, high = meta["scale"].partition("-")
    return Rubric(
        name=meta["name"],
        version=meta["version"],
        low=int(low),
        high=int(high),
        levels=levels,
        template=template,
        content_hash=hashlib.sha256(raw.encode()).hexdigest(),
    )
