"""Developer tasks. `nox` runs the tests; `nox -s demo` runs the toy demo end to end.

torch is installed first, pinned to the tested CPU build (torch==2.13.0), so pip never pulls a
multi-GB CUDA build through the harness's `torch>=2.4` range. GPU users set HARNESS_TORCH to the
pip arguments of their CUDA build (e.g. `HARNESS_TORCH="torch==2.13.0 --index-url URL"`), or to an
empty string to keep a torch they installed themselves.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = False

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _install(session: nox.Session, *groups: str, extras: str = "") -> None:
    torch_args = os.environ.get("HARNESS_TORCH", "torch==2.13.0").split()
    if torch_args:
        session.install(*torch_args)
    extra = [dep for group in groups for dep in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", f".[{extras}]" if extras else ".", *extra)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (gpu, api and slow tests are opt-in: `nox -- -m slow`); the Ray
    extra is installed so that the Ray executor's tests run on a real local cluster."""
    _install(session, "test", extras="ray")
    session.run("pytest", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the toy Golden Gate demo: an MLflow run plus a Markdown report under reports/."""
    _install(session)
    session.run("harness", "run", "experiments/toy_golden_gate.py", *session.posargs)


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
