"""The summary is a function of the records, not of the order they landed in: executors finish
cells in any order (Ray) and resumes append late, so rows and every bootstrap CI must not move."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.analysis.aggregate import summarise
from harness.store import RunStore
from tests.conftest import run_spec

SPEC = """
from harness import Ablation, Experiment, SaturationClamp, ToySAE
from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS

def spec():
    return Experiment(
        name="order",
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        studies=(
            SaturationClamp(name="sweep", feature=GOLDEN_GATE, levels=(0, 4),
                            prompts=NEUTRAL_PROMPTS[:4], controls=()),
            Ablation(name="ablate", features=(GOLDEN_GATE,), prompts=NEUTRAL_PROMPTS[:4],
                     controls=()),
        ),
    )
"""


def test_rows_do_not_depend_on_the_order_records_landed_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "order.py").write_text(SPEC)
    store = run_spec(tmp_path / "order.py")
    expected = summarise(store, 0)
    assert {r["sae"] for r in expected} >= {"toy/relu-256", "toy/topk-256"}

    # the same records, the second SAE's landed first (as when its cells finish first)
    moved = tmp_path / "moved" / store.dir.name
    shutil.copytree(store.dir, moved)
    lines = (store.dir / "records.jsonl").read_text().splitlines()
    late = [ln for ln in lines if json.loads(ln).get("sae") == "toy/relu-256"]
    early = [ln for ln in lines if ln not in late]
    assert late and early
    (moved / "records.jsonl").write_text("\n".join(early + late) + "\n")
    again = summarise(RunStore.open(moved.name, moved.parent), 0)
    assert json.dumps(again) == json.dumps(expected)  # (NaN CIs compare equal as text)

    # and so is every report (the full one and the lab tables): sections list SAEs in spec order
    from harness.views.report.markdown import write_report

    moved_store = RunStore.open(moved.name, moved.parent)
    for template in ("full", "lab"):
        a = write_report(store, expected, tmp_path / "a", template=template).read_text()
        b = write_report(moved_store, again, tmp_path / "b", template=template).read_text()
        assert a.replace(str(store.dir), "RUN") == b.replace(str(moved), "RUN"), template
