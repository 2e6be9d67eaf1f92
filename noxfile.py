"""Developer tasks. `nox` runs the tests; `nox -s demo` runs the toy demo end to end.

The demo and the tests share one environment, `.nox/shared` (the package with its Ray and
Inspect extras and the test tools): nox gives every session its own virtualenv, which would
put a second copy of torch on disk (2.3 GB), so these two sessions build and reuse
`.nox/shared` themselves, and reinstall only when `pyproject.toml` or `HARNESS_TORCH` changed
(the package is installed in editable mode, so code changes need nothing).

torch is installed first, pinned to the tested CPU build (torch==2.13.0), so pip never pulls a
multi-GB CUDA build through the harness's `torch>=2.4` range. GPU users set HARNESS_TORCH to the
pip arguments of their CUDA build (e.g. `HARNESS_TORCH="torch==2.13.0 --index-url URL"`), or to an
empty string to keep a torch they installed themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = False

PYPROJECT = nox.project.load_toml("pyproject.toml")
SHARED = Path(".nox/shared")


def _install(session: nox.Session, *groups: str, extras: str = "") -> None:
    torch_args = os.environ.get("HARNESS_TORCH", "torch==2.13.0").split()
    if torch_args:
        session.install(*torch_args)
    extra = [dep for group in groups for dep in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", f".[{extras}]" if extras else ".", *extra)


def _shared_env(session: nox.Session) -> Path:
    """The demo's and the tests' environment: created once, reinstalled when its inputs change;
    returns its bin directory."""
    bin_dir = SHARED / ("Scripts" if sys.platform == "win32" else "bin")
    torch = os.environ.get("HARNESS_TORCH", "torch==2.13.0")
    wanted = {
        "torch": torch,
        "pyproject": hashlib.sha256(Path("pyproject.toml").read_bytes()).hexdigest(),
    }
    stamp = SHARED / "harness-install.json"
    if not (bin_dir / "python").exists() and not (bin_dir / "python.exe").exists():
        session.run(
            sys.executable, "-m", "virtualenv", "-q", str(SHARED), external=True, silent=True
        )
    if not stamp.exists() or json.loads(stamp.read_text()) != wanted:
        session.log(f"installing the harness and its test tools into {SHARED} (once)")
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q"]
        if torch.split():
            session.run(*pip, *torch.split(), external=True, silent=True)
        test = nox.project.dependency_groups(PYPROJECT, "test")
        session.run(*pip, "-e", ".[ray,inspect]", *test, external=True, silent=True)
        stamp.write_text(json.dumps(wanted))
    return bin_dir


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the test suite (gpu, api and slow tests are opt-in: `nox -- -m slow`); the Ray
    extra is installed so that the Ray executor's tests run on a real local cluster."""
    bin_dir = _shared_env(session)
    session.run(str(bin_dir / "python"), "-m", "pytest", *session.posargs, external=True)


@nox.session(venv_backend="none")
def demo(session: nox.Session) -> None:
    """Run the toy Golden Gate demo: an MLflow run plus a Markdown report under reports/."""
    bin_dir = _shared_env(session)
    session.run(
        str(bin_dir / "harness"), "run", "experiments/toy_golden_gate.py", *session.posargs,
        external=True,
    )  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, tests and experiments."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", "harness", "tests", "experiments", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on harness/."""
    _install(session, "typecheck")
    session.run("mypy")
