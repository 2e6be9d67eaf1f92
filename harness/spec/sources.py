"""Where in a spec file each field was set, so an error names ``file:line`` as well as the
field path: ``spec.py:12: studies.0.feature.index: feature index 256 is out of range …``.

While ``spec()`` runs, every spec object records the file and line of the call that built it
(:data:`harness.spec.refs.SITES`); the call is then found in the file's syntax tree and each
keyword argument's own line read from it. An error's field path is matched to the longest
prefix that has a line; objects built inside the harness (defaults, the toy world's probes)
are passed over, so the line is the user's."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import harness.spec.refs as refs
from harness.errors import SpecError

__all__ = ["keyword_line", "locate", "located", "recording", "remember"]

_PACKAGE = str(Path(refs.__file__).resolve().parents[1])  # the harness package: no user lines
_SOURCES: dict[int, tuple[Any, dict[str, str]]] = {}  # id(experiment) → (it, path → file:line)


@contextmanager
def recording() -> Iterator[list[tuple[BaseModel, str, int]]]:
    """Record the construction site of every spec object built in the block."""
    previous, refs.SITES = refs.SITES, []
    try:
        yield refs.SITES
    finally:
        refs.SITES = previous


def _calls(filename: str, cache: dict[str, list[ast.Call]]) -> list[ast.Call]:
    if filename not in cache:
        try:
            tree = ast.parse(Path(filename).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            tree = ast.Module(body=[], type_ignores=[])
        cache[filename] = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return cache[filename]


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def keyword_line(filename: str, line: int, callee: str, keyword: str) -> int | None:
    """The line of ``keyword=`` in the call of ``callee`` that starts on ``line``."""
    for call in _calls(filename, {}):
        if call.lineno == line and _call_name(call) == callee:
            for kw in call.keywords:
                if kw.arg == keyword:
                    return kw.value.lineno
    return None


def remember(built: Any, final: Any, sites: list[tuple[BaseModel, str, int]]) -> None:
    """Keep the lines of ``built`` (what ``spec()`` returned) for ``final`` (the experiment
    the harness goes on with: prompt files resolved), by field path."""
    where = {id(obj): (f, line) for obj, f, line in sites if not f.startswith(_PACKAGE)}
    cache: dict[str, list[ast.Call]] = {}
    lines: dict[str, str] = {}

    def show(filename: str, line: int) -> str:
        try:
            name = str(Path(filename).resolve().relative_to(Path.cwd()))
        except ValueError:
            name = filename
        return f"{name}:{line}"

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, BaseModel):
            site = where.get(id(obj))
            if site is not None:
                filename, line = site
                lines.setdefault(path, show(filename, line))
                calls = [
                    c
                    for c in _calls(filename, cache)
                    if c.lineno == line and _call_name(c) == type(obj).__name__
                ]
                for kw in calls[0].keywords if calls else ():
                    if kw.arg is not None:
                        lines[f"{path}.{kw.arg}".lstrip(".")] = show(filename, kw.value.lineno)
            for name in type(obj).model_fields:
                walk(getattr(obj, name), f"{path}.{name}".lstrip("."))
        elif isinstance(obj, tuple | list):
            for i, item in enumerate(obj):
                walk(item, f"{path}.{i}")

    walk(built, "")
    if lines:
        _SOURCES[id(final)] = (final, lines)


def locate(exp: Any, field: str | None) -> str | None:
    """``file:line`` where ``field`` (a dotted path) of ``exp`` was set, if known."""
    known = _SOURCES.get(id(exp))
    if field is None or known is None or known[0] is not exp:
        return None
    parts = field.split(".")
    for n in range(len(parts), 0, -1):
        found = known[1].get(".".join(parts[:n]))
        if found is not None:
            return found
    return None


@contextmanager
def located(exp: Any) -> Iterator[None]:
    """Re-raise a :class:`SpecError` of the block with the spec's file:line first."""
    try:
        yield
    except SpecError as exc:
        where = locate(exp, exc.field)
        if where is None or exc.where is not None:
            raise
        raise exc.at(where) from None
