"""Load an experiment file: import it once, call ``spec()``, validate the result (Rule 1)."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

from pydantic import ValidationError

from harness.errors import SpecError
from harness.spec import Experiment

__all__ = ["format_validation_error", "load_spec"]


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message (got VALUE)``."""
    parts = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "spec"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = repr(got) if not isinstance(got, dict) else "{…}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        parts.append(f"{path}: {msg} (got {shown})")
    return "; ".join(parts)


def load_spec(path: Path) -> Experiment:
    """Import ``path``, call its ``spec()`` and return the validated :class:`Experiment`."""
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} does not exist")
    module_name = f"_harness_spec_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SpecError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise SpecError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:
        raise SpecError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(module_name, None)
    factory = getattr(module, "spec", None)
    if not callable(factory):
        raise SpecError(f"{path} defines no function spec() -> Experiment")
    try:
        result = factory()
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from exc
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        raise SpecError(
            f"{path}: spec() raised {type(exc).__name__}: {exc} (line {where.lineno})"
        ) from exc
    if not isinstance(result, Experiment):
        raise SpecError(
            f"{path}: spec() returned {type(result).__name__}, expected harness.Experiment"
        )
    return result
