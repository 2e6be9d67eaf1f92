"""Cells without a cluster: planning, the worker's store, and a worker that may not call the
judge (it hands an auto-interpreted description back to the driver)."""

from __future__ import annotations

from typing import Any

from harness.execute.cells import QUALITY, CellStore, plan_cells, snapshot
from harness.execute.ray_actor import CellActor
from harness.spec import Experiment, Specificity, ToySAE
from harness.toy.probes import GOLDEN_GATE


def _exp() -> Experiment:
    return Experiment(
        name="cells",
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        studies=(
            Specificity(  # no description and no label: auto-interpreted
                name="spec",
                feature=GOLDEN_GATE.model_copy(update={"label": None}),
                bins=(0.0, 0.5),
                n_per_bin=2,
            ),
        ),
    )


def test_cells_are_planned_per_sae_with_quality_first_and_keys_unique() -> None:
    cells = plan_cells(_exp(), quality=True)
    assert [(c.sae, c.study) for c in cells] == [
        ("toy/relu-256", QUALITY),
        ("toy/relu-256", "spec"),
        ("toy/topk-256", QUALITY),
        ("toy/topk-256", "spec"),
    ]
    assert len({c.key for c in cells}) == 4
    assert [c.key for c in plan_cells(_exp(), quality=True)] == [c.key for c in cells]


def test_a_snapshot_holds_the_cells_own_records_and_no_judgements() -> None:
    cell = plan_cells(_exp(), quality=False)[1]  # topk · spec
    records: list[dict[str, Any]] = [
        {"kind": "context", "key": "a", "sae": "toy/topk-256", "study": "spec"},
        {"kind": "context", "key": "b", "sae": "toy/relu-256", "study": "spec"},
        {"kind": "context", "key": "c", "sae": "toy/topk-256", "study": "other"},
        {"kind": "judgement", "key": "d", "sae": "toy/topk-256", "study": "spec"},
    ]
    snap = snapshot(records, cell)
    assert list(snap) == ["context"] and list(snap["context"]) == ["a"]
    store = CellStore("r", _exp(), snap, {})
    assert store.append([{"kind": "context", "key": "a"}, {"kind": "context", "key": "e"}]) == 1
    assert [r["key"] for r in store.appended] == ["e"]
    assert set(store.done_keys("context")) == {"a", "e"}


def test_a_worker_asks_the_driver_for_a_description_when_the_judge_is_an_api() -> None:
    exp = _exp()
    actor = CellActor()  # the actor's class, in this process
    assert actor.prepare(exp, "cpu")["device"] == "cpu"
    cell = plan_cells(exp, quality=False)[0]
    need = actor.run_cell(exp, "cpu", None, "r", cell, {}, {}, api_judge=True)
    assert "records" not in need
    asked = need["describe"]
    assert asked["rubric"] == "specificity" and asked["examples"]
    assert asked["record"]["kind"] == "description"
    # the driver stores the description; the cell, run again, uses it and judges nothing
    stored = {"description": {asked["record"]["key"]: {**asked["record"], "text": "bridges"}}}
    done = actor.run_cell(exp, "cpu", None, "r", cell, stored, {}, api_judge=True)
    contexts = [r for r in done["records"] if r["kind"] == "context"]
    assert contexts and {r["description"] for r in contexts} == {"bridges"}
    assert not any(r["kind"] in ("judgement", "description") for r in done["records"])
    # an offline judge: the worker describes offline itself
    offline = actor.run_cell(exp, "cpu", None, "r", cell, {}, {}, api_judge=False)
    kinds = [r["kind"] for r in offline["records"]]
    assert "description" in kinds and "judgement" not in kinds
