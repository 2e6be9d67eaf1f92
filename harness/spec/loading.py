"""Load an experiment file: import it once, call ``spec()``, validate the result (Rule 1)."""

from __future__ import annotations

import difflib
import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import SpecError
from harness.judge.rubric import is_rubric_path
from harness.spec import Experiment, PromptFile
from harness.spec.sources import keyword_line, located, recording, remember

__all__ = ["format_validation_error", "load_spec"]


def format_validation_error(exc: ValidationError) -> str:
    """All problems on one line: ``field.path: message (got VALUE)``.

    Errors raised while ``spec()`` builds a nested object (``GenerationSettings(...)``) carry
    paths relative to that object, so the path is prefixed with its class name.
    """
    parts = []
    prefix = "" if exc.title == "Experiment" else f"{exc.title}."
    for err in exc.errors():
        path = prefix + ".".join(str(p) for p in err["loc"]) if err["loc"] else exc.title
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = repr(got) if not isinstance(got, dict) else "{…}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        hint = ""
        if err["type"] == "extra_forbidden" and err["loc"]:
            name = str(err["loc"][-1])
            fields = _known_fields()
            # the object's own fields first (Ablation's `feature` is `features`), never itself
            own = fields.get(exc.title, []) if len(err["loc"]) == 1 else []
            own = [f for f in own if f != name]
            every = sorted({f for fs in fields.values() for f in fs} - {name})
            close = difflib.get_close_matches(name, own, 1, 0.75) or difflib.get_close_matches(
                name, every, 1, 0.75
            )
            hint = f"; did you mean {close[0]!r}?" if close else ""
        parts.append(f"{path}: {msg} (got {shown}){hint}")
    return "; ".join(parts)


def _known_fields() -> dict[str, list[str]]:
    """The field names of every spec model (the experiment, the references, each study kind),
    by model name: what a mistyped field is matched against."""
    from pydantic import BaseModel

    from harness.spec import refs
    from harness.spec.experiment import Experiment as Exp
    from harness.studies.registry import kinds

    models: list[type[BaseModel]] = [Exp, *(k.spec for k in kinds())]
    models += [v for v in vars(refs).values() if isinstance(v, type) and issubclass(v, BaseModel)]
    return {m.__name__: sorted(m.model_fields) for m in models}


def load_spec(path: Path) -> Experiment:
    """Import ``path``, call its ``spec()`` and return the validated :class:`Experiment`.

    While it is imported, the file's own directory is on ``sys.path``, so a spec can import
    probes or prompt sets from a sibling module.
    """
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} does not exist")
    module_name = f"_harness_spec_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SpecError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    here = str(path.resolve().parent)
    sys.path.insert(0, here)  # a spec may import helpers that sit next to it
    sites: list[Any] = []
    try:
        with recording() as sites:  # objects built at import time count too
            loader_spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise SpecError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: one line, exit 2
        raise SpecError(f"{_where(path, exc)}: importing it raised {_what(exc)}") from None
    finally:
        sys.modules.pop(module_name, None)
        if here in sys.path:
            sys.path.remove(here)
    factory = getattr(module, "spec", None)
    if not callable(factory):
        raise SpecError(f"{path} defines no function spec() -> Experiment")
    try:
        with recording() as built:  # where each field is set, for errors that name the line
            result = factory()
    except ValidationError as exc:
        raise SpecError(f"{_where(path, exc)}: {format_validation_error(exc)}") from None
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: one line, exit 2
        raise SpecError(f"{_where(path, exc)}: spec() raised {_what(exc)}") from None
    if not isinstance(result, Experiment):
        raise SpecError(
            f"{path}: spec() returned {type(result).__name__}, expected harness.Experiment"
        )
    sites += built
    remember(result, result, sites)
    with located(result):
        final = resolve_prompt_files(result, path.parent)
    remember(result, final, sites)
    return final


def _where(path: Path, exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc`` inside the spec file (else the file);
    for a validation error, the line of the keyword argument it names, where that is found."""
    target = str(path.resolve())
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == target]
    if not frames or frames[-1].lineno is None:
        return str(path)
    line = frames[-1].lineno
    if isinstance(exc, ValidationError) and exc.errors() and exc.errors()[0]["loc"]:
        line = keyword_line(target, line, exc.title, str(exc.errors()[0]["loc"][0])) or line
    return f"{path}:{line}"


def _what(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    name = type(exc).__name__
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}); a spec file must not exit"
    if isinstance(exc, KeyboardInterrupt):
        return "KeyboardInterrupt"
    return f"{name}: {text}" if text else name


def read_prompt_file(ref: PromptFile, base: Path, field: str) -> tuple[str, ...]:
    """Prompts of a ``.txt`` (one per non-empty line) or ``.jsonl`` (``{"prompt": ...}`` or
    ``{"text": ...}`` per line) file."""
    path = (base / ref.path).resolve()
    inside = [root for root in (base.resolve(), Path.cwd().resolve()) if path.is_relative_to(root)]
    if not inside and not ref.allow_outside:
        raise SpecError(
            f"prompt file {ref.path!r} is outside the spec's folder ({base}) and the working "
            "directory; its content would be stored with the run (spec.json, MLflow) — "
            "PromptFile(path=..., allow_outside=True) reads it anyway",
            field=field,
        )
    if not path.is_file():
        raise SpecError(f"prompt file {ref.path!r} not found (looked in {base})", field=field)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"prompt file {ref.path!r} is not UTF-8 text (byte {exc.start}: {exc.reason})",
            field=field,
        ) from None
    except OSError as exc:
        raise SpecError(
            f"cannot read prompt file {ref.path!r}: {exc.strerror}", field=field
        ) from None
    lines = [line for line in text.splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        prompts = []
        for n, line in enumerate(lines, start=1):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                item = None
            prompt = item.get("prompt", item.get("text")) if isinstance(item, dict) else item
            if not isinstance(prompt, str):
                raise SpecError(
                    f"{ref.path}:{n}: expected a JSON object with a 'prompt' or 'text' field "
                    "(or a JSON string)",
                    field=field,
                )
            prompts.append(prompt)
        lines = [str(p) for p in prompts]
    if not lines:
        raise SpecError(f"prompt file {ref.path!r} holds no prompts", field=field)
    return tuple(lines)


def resolve_prompt_files(exp: Experiment, base: Path) -> Experiment:
    """Replace every :class:`PromptFile` by the prompts it holds (the stored spec is then
    self-contained, and its hash follows the file's content)."""
    data = exp.model_dump(mode="python")
    changed = False
    for i, study in enumerate(exp.studies):
        for name, value in study:
            if isinstance(value, PromptFile):
                data["studies"][i][name] = read_prompt_file(value, base, f"studies.{i}.{name}")
                changed = True
    rubrics = [exp.judge.rubric, *exp.judge.extra_rubrics]
    if any(is_rubric_path(r) for r in rubrics):  # a rubric file next to the spec: absolute
        absolute = [str((base / r).resolve()) if is_rubric_path(r) else r for r in rubrics]
        data["judge"]["rubric"], data["judge"]["extra_rubrics"] = absolute[0], tuple(absolute[1:])
        changed = True
    if isinstance(exp.stats_corpus, PromptFile):
        data["stats_corpus"] = read_prompt_file(exp.stats_corpus, base, "stats_corpus")
        changed = True
    if not changed:
        return exp
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from exc
