"""The MLflow view of a run: one parent run per harness run id (a resumed run's attempt, or a
rebuild, replaces the earlier one), one nested run per SAE × study, tagged like the parent.

MLflow is a view: everything logged here is rebuilt from the run store. The tracking URI is
``MLFLOW_TRACKING_URI`` when set, else MLflow's own default (a local ``mlflow.db`` in the current
directory), so no server is needed. An interrupted run ends KILLED (Ctrl-C, SIGTERM) or FAILED
(any other exception), never RUNNING or FINISHED.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from harness.spec import Experiment
from harness.store import RunStore
from harness.text import strip_control

__all__ = [
    "close_stale_run",
    "flatten_params",
    "log_run",
    "log_summary",
    "metric_key",
    "mlflow_run",
    "retire_other_parents",
    "run_tags",
]

_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_key(*parts: str) -> str:
    """An MLflow-safe metric name from parts (``concept_score/10x``)."""
    return "/".join(_BAD_KEY.sub("_", p) for p in parts)


def flatten_params(data: Any, prefix: str = "") -> dict[str, str]:
    """Flatten nested spec JSON into dotted MLflow params (long values are truncated)."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten_params(v, f"{prefix}{k}."))
    elif isinstance(data, list) and data and any(isinstance(v, dict) for v in data):
        for i, v in enumerate(data):
            out.update(flatten_params(v, f"{prefix}{i}."))
    else:
        text = strip_control(json.dumps(data) if not isinstance(data, str) else data)
        out[prefix.rstrip(".")] = text if len(text) <= 500 else text[:497] + "..."
    return out


@contextmanager
def _store_lock() -> Iterator[None]:
    """Serialise the first touches of a local SQLite tracking store across processes.

    Two runs starting at once against a new ``mlflow.db`` both try to create its tables (an
    alembic migration) and one fails; creating the experiment races the same way. A file lock
    next to the database makes the second process wait for the first. Servers need no lock.
    """
    uri = mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".harness-lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_tags(experiment: Experiment, store: RunStore) -> dict[str, str]:
    """The parent run's tags, from the spec and the stored provenance (never the environment)."""
    prov = store.read_json("provenance.json")
    return {
        "harness.run_id": store.run_id,
        "harness.spec_hash": experiment.spec_hash(),
        "harness.run_dir": str(store.dir.resolve()),
        "harness.judge": str(prov["judge"]),
        "harness.rubric": str(prov["rubric"]),
        "harness.rubrics": ", ".join((prov.get("rubrics") or {prov["rubric"]: ""}).values())
        or str(prov["rubric"]),
        "harness.git_commit": str(prov.get("git_commit")),
        "harness.git_dirty": str(prov.get("git_dirty")),
        **{f"harness.version.{k}": str(v) for k, v in prov.get("packages", {}).items()},
        **{f"harness.tag.{t}": "1" for t in experiment.tags},
    }


def _set_experiment(name: str) -> None:
    """Make ``name`` the active MLflow experiment, marked as model development so that the UI
    opens it on its runs table and charts (MLflow 3 otherwise may open the GenAI traces view)."""
    found = mlflow.set_experiment(name)
    if found.tags.get("mlflow.experimentKind") != "custom_model_development":
        mlflow.MlflowClient().set_experiment_tag(
            found.experiment_id, "mlflow.experimentKind", "custom_model_development"
        )


@contextmanager
def mlflow_run(experiment: Experiment, store: RunStore, tags: dict[str, str]) -> Iterator[str]:
    """Open the parent MLflow run; yields its id and closes it with the right status."""
    with _store_lock():
        _set_experiment(experiment.name)
        tags = {k: strip_control(v) for k, v in tags.items()}
        run = mlflow.start_run(run_name=store.run_id, tags=tags)
        retire_other_parents(store, keep=run.info.run_id, spare_live=False)  # we are the writer
    try:
        mlflow.log_params(flatten_params(experiment.model_dump(mode="json")))
        yield run.info.run_id
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def close_stale_run(status: dict[str, Any]) -> str | None:
    """Mark the MLflow run of a run directory whose process died (its status still says
    ``running``) KILLED, with an end time; returns its id when it was still RUNNING."""
    run_id = status.get("mlflow_run_id")
    if not run_id:
        return None
    client = mlflow.MlflowClient(tracking_uri=status.get("tracking_uri") or None)
    try:
        info = client.get_run(run_id).info
    except Exception:  # the store moved or the run was deleted: nothing left to close
        return None
    if info.status != "RUNNING":
        return None
    client.set_terminated(run_id, status="KILLED")
    return str(run_id)


_LEVEL = re.compile(r"^(\d+(?:\.\d+)?)x$")  # a target-prompt level in × max ("10x")
DOSE_METRICS = ("concept_score", "fluency_score", "instruction_score", "drift", "kl_mean")


def _log_dose_response(rows: list[dict[str, Any]]) -> None:
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
        return
    whole = all(level.is_integer() for level, _ in points)
    scale = 1 if whole else 100
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    run = mlflow.active_run()
    assert run is not None
    mlflow.MlflowClient().log_batch(
        run.info.run_id,
        metrics=[
            Metric(f"dose/{r['metric']}{part}", float(r[field]), now, round(level * scale))
            for level, r in sorted(points, key=lambda p: p[0])
            for part, field in (("", "value"), (".ci_low", "ci_low"), (".ci_high", "ci_high"))
            if r[field] == r[field]  # a row without a CI has no bound series
        ],
    )
    mlflow.set_tag("dose_step", "level in × max" if whole else "level in hundredths of × max")


def log_summary(summary: list[dict[str, Any]], store: RunStore, report: Path | None) -> None:
    """Log nested runs (one per SAE × study) with their metrics, then the parent's artifacts."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in summary:
        groups.setdefault((row["sae"], row["study"]), []).append(row)
    parent_tags = {k: strip_control(v) for k, v in run_tags(store.experiment(), store).items()}
    for (sae, study), rows in groups.items():
        with mlflow.start_run(
            run_name=f"{sae} × {study}",
            nested=True,
            tags={**parent_tags, "sae": sae, "study": study},
        ):
            metrics: dict[str, float] = {}
            for r in rows:
                base = metric_key(r["metric"], r["condition"])
                if r["n"] and r["value"] == r["value"]:  # skip NaN (nothing scored)
                    metrics[base] = r["value"]
                    if r["ci_low"] == r["ci_low"]:  # p-values have no CI
                        metrics[base + ".ci_low"] = r["ci_low"]
                        metrics[base + ".ci_high"] = r["ci_high"]
                metrics[base + ".n"] = float(r["n"])
            mlflow.log_metrics(metrics)
            _log_dose_response(rows)
    from harness.analysis.aggregate import judge_totals

    totals = judge_totals(store)
    mlflow.log_metrics(
        {f"judge/{k}": float(v) for k, v in totals.items() if k != "unscored_reasons"}
    )
    for name in ("spec.json", "provenance.json", "records.jsonl", "summary.json"):
        path = store.dir / name
        if path.exists():
            mlflow.log_artifact(str(path), artifact_path="run")
    if report is not None:
        mlflow.log_artifact(str(report), artifact_path="report")
        plots = report.with_name(f"{store.run_id}-files")
        if plots.is_dir():
            mlflow.log_artifacts(str(plots), artifact_path=f"report/{plots.name}")


def log_run(store: RunStore, summary: list[dict[str, Any]], report: Path | None) -> str:
    """Rebuild the MLflow view of a stored run (``harness log``, and after ``rescore``): one
    parent run tagged ``harness.view=rebuilt`` with its nested runs, replacing the previous
    rebuild of the same run id rather than adding to it. Attempts that a dead process left
    RUNNING are marked KILLED. Returns the new parent run's id."""
    experiment = store.experiment()
    with _store_lock():
        _set_experiment(experiment.name)
    tags = {k: strip_control(v) for k, v in run_tags(experiment, store).items()}
    with mlflow.start_run(run_name=store.run_id, tags={**tags, "harness.view": "rebuilt"}) as run:
        with _store_lock():
            retire_other_parents(store, keep=run.info.run_id, spare_live=True)
        mlflow.log_params(flatten_params(experiment.model_dump(mode="json")))
        log_summary(summary, store, report)
    return str(run.info.run_id)


def retire_other_parents(store: RunStore, keep: str, spare_live: bool) -> list[str]:
    """One parent run per harness run id and run directory: every other parent of this run
    (an earlier attempt, killed or finished, or an earlier rebuild) is deleted with its nested
    runs (the same spec run in another directory, e.g. each night's ``nightly`` run, keeps its
    own),
    after an attempt a dead process left RUNNING is marked KILLED. Deleted runs leave the UI
    and ``search_runs`` but keep their status for ``get_run`` (``mlflow gc`` purges them). With
    ``spare_live`` (a rebuild), the parent of a run in progress in another process is left
    alone. Returns the ids retired."""
    client = mlflow.MlflowClient()
    kept = client.get_run(keep)
    ids = [kept.info.experiment_id]
    here = str(store.dir.resolve())
    retired = []
    for run in client.search_runs(ids, filter_string=f"tags.`harness.run_id` = '{store.run_id}'"):
        if run.info.run_id == keep or "mlflow.parentRunId" in run.data.tags:
            continue
        if run.data.tags.get("harness.run_dir") != here:  # another store of the same spec
            continue  # (a nightly folder, another checkout): its own view, kept
        if run.info.status == "RUNNING":
            if spare_live and store.is_live():
                continue
            client.set_terminated(run.info.run_id, status="KILLED")
        for child in client.search_runs(
            ids, filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
        ):
            client.delete_run(child.info.run_id)
        client.delete_run(run.info.run_id)
        retired.append(run.info.run_id)
    return retired
