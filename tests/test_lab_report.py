"""`harness report RUN --template lab` on the toy steering lab (contrastive search, defence by
zeroing the found feature, attack by amplifying it): the lab report's tables, from the store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import REPO

LAB = REPO / "experiments" / "toy_lab45.py"


def _section(text: str, heading: str) -> str:
    return text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_lab_template_has_the_lab_report_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(LAB), "--runs", "runs", "--no-mlflow", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["report", "latest", "--runs", "runs", "--template", "lab"]) == 0
    path = Path(capsys.readouterr().out.split("report: ")[1].strip())
    assert path.name.endswith("-lab.md")
    text = path.read_text()

    quality = _section(text, "SAE quality")
    assert "| toy/relu-256 | 0.914 [" in quality and "| toy/topk-256 | 0.870 [" in quality

    # top features per prompt: every prompt of every study, the studied feature in bold
    top = _section(text, "Top features per prompt")
    relu = top.split("### toy/relu-256", 1)[1].split("###", 1)[0]
    rows = [r for r in relu.splitlines() if r.startswith("|")][2:]
    assert len(rows) == 6 + 6 + 8  # jailbreak, request and control prompts, each once
    assert "**24**" in relu  # the jailbreak feature the contrastive search found on relu-256
    assert all(len(re.findall(r" @ “", r)) >= 1 for r in rows)

    # top-5 contrastive candidates with scores (and CIs for the search itself)
    cands = _section(text, "Contrastive candidates (top 5)")
    search = [r for r in cands.splitlines() if r.startswith("| jailbreak\\_search |")]
    assert len(search) == 10  # 5 per SAE
    assert all(re.search(r"\d\.\d{3} \[-?\d\.\d{3}, \d\.\d{3}\] \(n=12\)", r) for r in search)
    assert "| defence, attack | toy/relu-256 | 1 | **24** |" in cands

    # defence (zeroed) and attack (amplified) next-token tables, one row per target prompt
    defence = _section(text, "Defence: features zeroed")
    attack = _section(text, "Attack: features amplified or clamped")
    for section, prompts in ((defence, 6), (attack, 6)):
        blocks = section.split("### ")[1:]
        assert len(blocks) == 2  # one per SAE
        for block in blocks:
            assert "Top token changed on " in block
            rows = [r for r in block.splitlines() if r.startswith("| target |")]
            assert len(rows) == prompts
            assert all(("| changed |" in r) or ("| unchanged |" in r) for r in rows)
    assert "Top token changed on 6 of 6 prompts" in attack  # amplifying to 20 derails requests

    # side effects on the control prompts of both ablations, per SAE
    effects = _section(text, "Side effects on control prompts")
    rows = [
        r for r in effects.splitlines() if r.startswith("| defence") or r.startswith("| attack")
    ]
    assert len(rows) == 4
    assert all(r.count("(n=") == 4 for r in rows)


def test_a_sweeps_zero_level_is_a_defence_not_an_attack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "sweep.py"
    spec.write_text(
        "from harness import Experiment, SaturationClamp, ToySAE\n"
        "from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS\n"
        "def spec():\n"
        "    return Experiment(name='zero', saes=(ToySAE(name='relu-256'),), sae_quality=None,\n"
        "        studies=(SaturationClamp(name='sweep', feature=GOLDEN_GATE, levels=(0, 5),\n"
        "                                 prompts=NEUTRAL_PROMPTS[:3], controls=()),))\n"
    )
    assert main(["run", str(spec), "--runs", "runs", "--no-mlflow", "--quiet"]) == 0
    assert main(["report", "latest", "--runs", "runs", "--template", "lab"]) == 0
    path = Path(capsys.readouterr().out.split("report: ")[-1].strip())
    text = path.read_text()
    defence = _section(text, "Defence: features zeroed")
    attack = _section(text, "Attack: features amplified or clamped")
    assert "### sweep on toy/relu-256: 0x" in defence and ": 5x" not in defence
    assert "### sweep on toy/relu-256: 5x" in attack and ": 0x" not in attack
