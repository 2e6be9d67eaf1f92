"""The nightly history as an MLflow run: one chart per gated quantity, one step per night."""

from __future__ import annotations

import calendar
import time
from typing import Any

from harness.views.nested_metrics import metric_key
from harness.views.tracking import bound_http

__all__ = ["log_history"]


def _night_ms(night: str) -> int:
    """A night folder's UTC time (``YYYYmmdd-HHMMSS``) in ms; now for another name."""
    try:
        return calendar.timegm(time.strptime(night, "%Y%m%d-%H%M%S")) * 1000
    except ValueError:
        return int(time.time() * 1000)


def log_history(name: str, nights: list[Any], metric: str | None, study: str | None) -> str:
    """Log ``nights`` (:func:`harness.analysis.history.nightly_history`) as one MLflow run
    ``history: NAME`` in the experiment's MLflow experiment: each quantity's value and CI
    bounds at step = the night's index, timestamped with the night; returns the run id."""
    import mlflow
    from mlflow.entities import Metric

    bound_http()
    mlflow.set_experiment(name)
    batch: list[Metric] = []
    for step, night in enumerate(nights):
        ms = _night_ms(night.night)
        for p in night.points:
            if metric not in (None, p.metric) or study not in (None, p.study):
                continue
            key = metric_key("history", p.sae, p.study, p.metric, p.condition)
            for suffix, value in (("", p.value), ("/ci_low", p.ci_low), ("/ci_high", p.ci_high)):
                if value == value:  # NaN: nothing to plot that night
                    batch.append(Metric(key + suffix, value, ms, step))
    with mlflow.start_run(run_name=f"history: {name}") as run:
        mlflow.set_tags(
            {
                "harness.history": name,
                "harness.nights": ", ".join(n.night for n in nights),
            }
        )
        client = mlflow.MlflowClient()
        for start in range(0, len(batch), 1000):
            client.log_batch(run.info.run_id, metrics=batch[start : start + 1000])
        return str(run.info.run_id)
