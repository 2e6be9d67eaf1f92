"""The ``harness`` command line: a thin layer over the runner, the store and the toy builder.

Exit codes: 0 success; 1 a run failed (or too many judgements were unscored); 2 a user error (bad
spec, bad arguments, unloadable model, missing run); 130 interrupted. User errors print one line,
never a traceback.
"""

from __future__ import annotations

import os
import sys
import warnings

from harness.cli.checkpoints import cmd_compare
from harness.cli.commands import (
    cmd_list,
    cmd_log,
    cmd_plan,
    cmd_report,
    cmd_rescore,
    cmd_run,
    cmd_show,
    cmd_validate,
)
from harness.cli.export import cmd_export
from harness.cli.gate import cmd_accept, cmd_history, cmd_nightly, cmd_regress
from harness.cli.labels import cmd_label
from harness.cli.parser import build_parser
from harness.cli.tools import cmd_bench, cmd_toy
from harness.errors import HarnessError, HarnessWarning
from harness.text import strip_control

__all__ = ["main"]


def _format_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    if issubclass(category, HarnessWarning):
        return f"harness: warning: {strip_control(str(message))}\n"
    return _default_format(message, category, filename, lineno, line)


_default_format = warnings.formatwarning


def _quiet_libraries(verbose: bool) -> None:
    """Library logging (MLflow's database set-up, HTTP clients, model loaders) only with -v."""
    import logging
    import os

    if not verbose:  # MLflow sets its own level when it is imported; this is what it reads
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    level = logging.INFO if verbose else logging.WARNING
    for name in ("mlflow", "alembic", "httpx", "urllib3", "transformers", "sentence_transformers"):
        logging.getLogger(name).setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    warnings.formatwarning = _format_warning
    args = build_parser().parse_args(argv)
    _quiet_libraries(args.verbose)
    handlers = {
        "run": cmd_run,
        "validate": cmd_validate,
        "plan": cmd_plan,
        "list": cmd_list,
        "log": cmd_log,
        "rescore": cmd_rescore,
        "show": cmd_show,
        "report": cmd_report,
        "toy": cmd_toy,
        "bench": cmd_bench,
        "regress": cmd_regress,
        "accept": cmd_accept,
        "nightly": cmd_nightly,
        "history": cmd_history,
        "compare": cmd_compare,
        "label": cmd_label,
        "export": cmd_export,
    }
    threads = getattr(args, "threads", None)
    saved = os.environ.get("HARNESS_THREADS")
    try:
        if threads is not None:  # read where the model loads (engine/threads.py), Ray included
            if threads < 1:
                raise HarnessError(f"--threads must be at least 1, got {threads}")
            os.environ["HARNESS_THREADS"] = str(threads)
        return handlers[args.command](args)
    except HarnessError as exc:
        print(f"harness: error: {strip_control(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # disk full, read-only folder, permissions: one line, exit 1
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"harness: error: {strip_control(f'{where}{exc.strerror or exc}')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("harness: interrupted; finished items are saved, re-run to resume", file=sys.stderr)
        return 130
    finally:
        if threads is not None:  # an in-process caller (a notebook, a test) keeps its own
            if saved is None:
                os.environ.pop("HARNESS_THREADS", None)
            else:
                os.environ["HARNESS_THREADS"] = saved
