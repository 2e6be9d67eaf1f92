"""Rubrics: versioned text files with a header and a prompt template, identified by content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SpecError

__all__ = [
    "METRIC_NAMES",
    "RUBRIC_DIR",
    "Rubric",
    "available_rubrics",
    "is_rubric_path",
    "load_rubric",
    "metric_rubric",
    "parse_rubric",
    "rubric_metric",
]

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
    text: str = ""  # the whole file, as judged (stored with each run for its views)

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


def is_rubric_path(name: str) -> bool:
    """Whether a spec names a rubric by file path (``my_rubric.txt``) rather than by name."""
    return name.endswith(".txt") or "/" in name


def load_rubric(name: str, directory: Path = RUBRIC_DIR) -> Rubric:
    """A shipped rubric by name (``<directory>/<name>.txt``), or a rubric file by path."""
    path = Path(name) if is_rubric_path(name) else directory / f"{name}.txt"
    if not path.is_file():
        if is_rubric_path(name):
            raise SpecError(f"rubric file {name!r} not found", field="judge.rubric")
        raise SpecError(
            f"unknown rubric {name!r}; valid: {available_rubrics(directory)} or a path to a "
            "rubric file (.txt)",
            field="judge.rubric",
        )
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read rubric file {path}: {exc}", field="judge.rubric") from None
    return parse_rubric(raw, str(path))


def parse_rubric(raw: str, source: str = "rubric") -> Rubric:
    """Parse rubric text: ``key: value`` header lines (name, version, scale ``low-high``,
    ``level N``), a ``---`` line, then the prompt template."""
    header, sep, template = raw.partition("\n---\n")
    if not sep:
        raise SpecError(f"rubric file {source} has no '---' line between header and template")
    meta: dict[str, str] = {}
    levels: dict[int, str] = {}
    try:
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
            text=raw,
        )
    except (KeyError, ValueError) as exc:
        raise SpecError(
            f"rubric file {source}: header needs name, version and scale low-high ({exc})"
        ) from None


METRIC_NAMES = {
    "concept_presence": "concept_score",
    "fluency": "fluency_score",
    "instruction": "instruction_score",
}


def rubric_metric(name: str, primary: bool) -> str:
    """The one name a rubric's scores go by everywhere (summary, items, MLflow, compare):
    the primary rubric's is ``concept_score`` (a custom concept rubric too), others
    ``fluency_score``, ``instruction_score``, else ``<name>_score``."""
    if primary:
        return METRIC_NAMES.get(name, "concept_score")
    return METRIC_NAMES.get(name, f"{name}_score")


def metric_rubric(metric: str, primary: str) -> str:
    """The rubric name behind a judged metric name (``concept_score`` → the primary rubric)."""
    if metric == "concept_score":
        return primary
    return next((n for n, m in METRIC_NAMES.items() if m == metric), metric.removesuffix("_score"))
