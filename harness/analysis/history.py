"""A spec's nightly history: its gated metrics night by night, with their CIs.

``harness nightly`` keeps each night's runs in ``<runs>/nightly/<YYYYmmdd-HHMMSS>/``; a night's
run of an experiment is found by the experiment name in its stored spec. The quantities are the
summary rows the regression gate checks (the spec's tolerance metrics, on target prompts, the
baseline and the controls left out), read from each night's stored summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import StoreError
from harness.store import RunStore
from harness.studies.controls import parse_control
from harness.studies.items import BASELINE, condition_order

__all__ = ["Night", "Point", "nightly_history"]


@dataclass(frozen=True)
class Point:
    """One gated quantity on one night."""

    sae: str
    study: str
    condition: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class Night:
    """One night's run of the experiment and its gated quantities."""

    night: str  # the night's folder name (its UTC date and time)
    run_id: str
    status: str
    points: list[Point]


def _gated(row: dict[str, object], metrics: set[str]) -> bool:
    cond = str(row["condition"])
    return (
        row["metric"] in metrics
        and ":" not in cond  # target prompts only
        and cond != BASELINE
        and parse_control(cond) is None
    )


def nightly_history(name: str, runs_root: Path) -> list[Night]:
    """Every night's run of experiment ``name`` under ``runs_root/nightly``, oldest first."""
    nights = []
    for spec in sorted((runs_root / "nightly").glob("*/*/spec.json")):
        store = RunStore(spec.parent)
        try:
            exp = store.experiment()
        except (OSError, ValueError, StoreError):
            continue  # a damaged run is no night of this experiment
        if exp.name != name:
            continue
        status = str(store.status().get("status", "?"))
        points: list[Point] = []
        if (store.dir / "summary.json").exists():
            metrics = {t.metric for t in exp.regression}
            rows = [r for r in store.read_json("summary.json") if _gated(r, metrics)]
            rows.sort(
                key=lambda r: (
                    str(r["sae"]),
                    str(r["study"]),
                    str(r["metric"]),
                    condition_order(str(r["condition"])),
                )
            )
            points = [
                Point(
                    str(r["sae"]),
                    str(r["study"]),
                    str(r["condition"]),
                    str(r["metric"]),
                    float(r["value"]),
                    float(r["ci_low"]),
                    float(r["ci_high"]),
                    int(r["n"]),
                )
                for r in rows
            ]
        nights.append(Night(spec.parent.parent.name, store.run_id, status, points))
    return nights
