"""The package's shape: no import circle, no module past 400 lines, and the views (report, compare,
regress, show, validate, list, plan) never load model code."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "harness"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


def _import_graph() -> dict[str, set[str]]:
    """Every import anywhere in a module (top level, functions, TYPE_CHECKING blocks)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle() -> None:
    graph = _import_graph()
    assert len(graph) > 50
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_module_over_400_lines() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in _modules().items()}
    assert not {m: n for m, n in sizes.items() if n > MAX_LINES}


VIEWS = """
import json, sys
from harness.cli import main
run, spec, reports = sys.argv[1:4]
codes = [
    main(["validate", spec]),
    main(["plan", spec]),
    main(["list", "--runs", str(__import__("pathlib").Path(run).parent)]),
    main(["show", run]),
    main(["report", run, "--reports", reports]),
    main(["report", run, "--reports", reports, "--template", "lab"]),
    main(["accept", run, "--runs", str(__import__("pathlib").Path(run).parent)]),
    main(["regress", run, "--runs", str(__import__("pathlib").Path(run).parent),
          "--reports", reports]),
]
HEAVY = ("torch", "transformer_lens", "sae_lens", "anthropic")
heavy = sorted(m for m in HEAVY if m in sys.modules)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_views_import_no_model_code(tmp_path: Path) -> None:
    """A stored run's report, lab report, summary, gate and listing, and a spec's validation
    and plan, in a fresh process: torch, TransformerLens, SAELens and anthropic stay unloaded."""
    from tests.conftest import run_spec

    spec = tmp_path / "spec.py"
    spec.write_text(
        "from harness import Experiment, FeatureByIndex, SaturationClamp, ToySAE\n"
        "def spec():\n"
        "    return Experiment(name='views', saes=(ToySAE(),), studies=(SaturationClamp(\n"
        "        name='s', feature=FeatureByIndex(index=9, keywords=('bridge',)),\n"
        "        levels=(0, 5), prompts=('the chef added salt to the', 'a cold wind')),))\n"
    )
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        store = run_spec(spec)
    finally:
        os.chdir(cwd)
    run_dir = tmp_path / store.dir
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", VIEWS, str(run_dir), str(spec), str(tmp_path / "reports")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0] * 8
    assert result["heavy"] == []
    assert (tmp_path / "reports" / f"{store.run_id}.md").is_file()


def test_every_command_and_flag_explains_itself() -> None:
    """`--help` of every subcommand has a description, and every flag a help text."""
    import argparse

    from harness.cli.parser import build_parser

    def commands(
        parser: argparse.ArgumentParser, prefix: str = ""
    ) -> list[tuple[str, argparse.ArgumentParser]]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append((prefix + name, sub))
                    found += commands(sub, prefix + name + " ")
        return found

    missing = []
    for name, sub in commands(build_parser()):
        if not sub.description:  # bench/toy sub-subcommands too
            missing.append(f"{name}: no description")
        missing += [
            f"{name} {(a.option_strings or [a.dest])[0]}: no help"
            for a in sub._actions
            if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction) and not a.help
        ]
    assert not missing, missing
