"""The metrics of a nested MLflow run (one SAE × study): a bounded set of metric keys chosen
headline first, the sweep's dose–response as metric histories, and every summary row as one CSV
table, so the run page opens fast whatever the study's size."""

from __future__ import annotations

import re
import time
from typing import Any

import mlflow

__all__ = [
    "DOSE_METRICS",
    "MAX_METRIC_KEYS",
    "ROWS_ARTIFACT",
    "headline_metrics",
    "log_dose_response",
    "metric_key",
    "rows_csv",
]


_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_key(*parts: str) -> str:
    """An MLflow-safe metric name from parts (``concept_score/10x``)."""
    return "/".join(_BAD_KEY.sub("_", p) for p in parts)


_LEVEL = re.compile(r"^(\d+(?:\.\d+)?)x$")  # a target-prompt level in × max ("10x")
DOSE_METRICS = ("concept_score", "fluency_score", "instruction_score", "drift", "kl_mean")


def log_dose_response(rows: list[dict[str, Any]]) -> int:
    """A sweep's dose–response as metric histories (``dose/<metric>``, one step per level), so
    MLflow's charts draw it as a curve against the level. Steps are the levels in × max when
    they are whole numbers, else hundredths of × max (the ``dose_step`` tag says which)."""
    points = [
        (float(m.group(1)), r)
        for r in rows
        if r["metric"] in DOSE_METRICS and (m := _LEVEL.match(r["condition"])) is not None
    ]
    points = [(level, r) for level, r in points if r["n"] and r["value"] == r["value"]]
    if not points:
        return 0
    whole = all(level.is_integer() for level, _ in points)
    scale = 1 if whole else 100
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    run = mlflow.active_run()
    assert run is not None
    series = [
        Metric(f"dose/{r['metric']}{part}", float(r[field]), now, round(level * scale))
        for level, r in sorted(points, key=lambda p: p[0])
        for part, field in (("", "value"), (".ci_low", "ci_low"), (".ci_high", "ci_high"))
        if r[field] == r[field]  # a row without a CI has no bound series
    ]
    mlflow.MlflowClient().log_batch(run.info.run_id, metrics=series)
    mlflow.set_tag("dose_step", "level in × max" if whole else "level in hundredths of × max")
    return len({m.key for m in series})


MAX_METRIC_KEYS = 200  # per nested run: MLflow's run page stays fast (issue 30: 1,693 did not)
ROWS_ARTIFACT = "summary/rows.csv"  # every summary row of the nested run, metric or not


def _row_keys(r: dict[str, Any]) -> dict[str, float]:
    """The metric keys of one summary row: value, its CI and n (NaN values are left out)."""
    base = metric_key(r["metric"], r["condition"])
    keys: dict[str, float] = {}
    if r["n"] and r["value"] == r["value"]:  # skip NaN (nothing scored)
        keys[base] = r["value"]
        if r["ci_low"] == r["ci_low"]:  # p-values have no CI
            keys[base + ".ci_low"] = r["ci_low"]
            keys[base + ".ci_high"] = r["ci_high"]
    keys[base + ".n"] = float(r["n"])
    return keys


def _tier(r: dict[str, Any], headline: set[str], gated: set[str]) -> int:
    """Which rows become metrics first: 0 a kind's headline metrics and the study's own rows
    (recommended level, trend), 1 feature − control differences, 2 the other gated metrics,
    3 the rest (neutral prompts, extra measures), 4 a control's own scores."""
    from harness.studies.controls import parse_control

    cond, metric = str(r["condition"]), str(r["metric"])
    if parse_control(cond) is not None:
        return 4
    if "_vs_" in metric:
        return 1 if metric.startswith("concept_") else 3
    if cond.startswith("neutral:"):
        return 3
    if metric in headline or (not _LEVEL.match(cond) and cond != "baseline"):
        return 0
    return 2 if metric in gated else 3


def headline_metrics(
    rows: list[dict[str, Any]], study: Any, room: int = MAX_METRIC_KEYS
) -> tuple[dict[str, float], int]:
    """The metric keys of a nested run, at most ``room``, whole rows in :func:`_tier` order
    (spec order within a tier); returns them and how many rows they hold."""
    from harness.studies.registry import kind_of

    metrics = kind_of(study).metrics if study is not None else ()
    headline = {h.metric for h in metrics if h.headline}
    gated = {h.metric for h in metrics}
    chosen: dict[str, float] = {}
    used = 0
    ranked = sorted(range(len(rows)), key=lambda i: (_tier(rows[i], headline, gated), i))
    for i in ranked:
        keys = _row_keys(rows[i])
        if len(chosen) + len(keys) > room:
            continue  # a smaller row of a later tier may still fit
        chosen.update(keys)
        used += 1
    return chosen, used


def rows_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    out = io.StringIO()
    fields = ["sae", "study", "condition", "metric", "value", "ci_low", "ci_high", "n"]
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
