"""The MLflow view of a run: one parent run per harness run id (a resumed run's attempt, or a
rebuild, replaces the earlier one), one nested run per SAE × study, tagged like the parent.

MLflow is a view: everything logged here is rebuilt from the run store. The tracking URI is
``MLFLOW_TRACKING_URI`` when set, else MLflow's own default (a local ``mlflow.db`` in the current
directory), so no server is needed. An interrupted run ends KILLED (Ctrl-C, SIGTERM) or FAILED
(any other exception), never RUNNING or FINISHED.

Results never wait for this view: a tracking store that is unreachable when a run starts, or
dies during it, costs one warning line (:class:`ParentView`), the run's exit code and status are
the computation's, and ``harness log RUN`` writes the view when the store is back. MLflow's HTTP
client retries 7 times with exponential backoff and a 120 s timeout by default (~10 minutes on a
dead server); :func:`bound_http` makes it give up in seconds unless the ``MLFLOW_HTTP_REQUEST_*``
variables say otherwise.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from harness.spec import Experiment
from harness.store import RunStore
from harness.text import strip_control
from harness.views.nested_metrics import (
    MAX_METRIC_KEYS,
    ROWS_ARTIFACT,
    headline_metrics,
    log_dose_response,
    metric_key,
    rows_csv,
)

__all__ = [
    "HTTP_DEFAULTS",
    "ParentView",
    "bound_http",
    "close_stale_run",
    "flatten_params",
    "log_run",
    "log_summary",
    "parent_name",
    "retire_other_parents",
    "run_tags",
    "tracking_problem",
    "unreachable",
]


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


HTTP_DEFAULTS = {  # ~2 s to give up on a refused connection, ~30 s on a server that hangs
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def bound_http() -> None:
    """Bound MLflow's HTTP retries (:data:`HTTP_DEFAULTS`); a variable already set wins."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


def _reason(exc: BaseException) -> str:
    """The cause of a tracking failure in a few words (MLflow wraps it in a page of text)."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if found:
        return found.group(0).strip()
    if "timed out" in text.lower():
        return "timed out"
    lines = text.strip().splitlines()
    return strip_control(lines[0])[:160] if lines else type(exc).__name__


def unreachable(uri: str, exc: BaseException | str, run: str | Path | None = None) -> str:
    """The one line that says the tracking store failed and what to do (``run``: the run
    directory, which `harness log` takes wherever the run store is, nightly folders included)."""
    why = exc if isinstance(exc, str) else _reason(exc)
    then = f"run 'harness log {run}'" if run else "run 'harness log RUN'"
    return f"MLflow unreachable at {uri}: {why}; results are stored; {then} when it is back"


def tracking_problem(timeout_s: float = 5.0) -> str | None:
    """Why the tracking server cannot be reached (None: it answers, or the store is local).
    Asks a server's ``/health`` once, without retries: any HTTP answer counts as reachable."""
    import urllib.error
    import urllib.request

    uri = mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as answer:
            answer.read(64)
    except urllib.error.HTTPError:
        return None  # it answered (a proxy or a server without /health)
    except (OSError, ValueError) as exc:
        return _reason(getattr(exc, "reason", exc))
    return None


def _forget_active_runs() -> None:
    """Drop this process's record of active MLflow runs without calling the server: after an
    outage, ending them would retry against a server that is gone (and again at exit)."""
    from mlflow.tracking import fluent

    stack = getattr(fluent, "_active_run_stack", None)
    if stack is not None and hasattr(stack, "get"):
        stack.get().clear()
    os.environ.pop("MLFLOW_RUN_ID", None)


def parent_name(store: RunStore, rebuilt: bool = False) -> str:
    """A parent run's name, unique and readable where the UI cuts it short: what and when
    first (``night 2026-12-07 00:00``, ``run 2026-12-07 23:58``, ``rebuilt …``), then the run
    id (spec name and hash), so the demo and each night's run of one spec tell apart."""
    night = store.dir.parent
    if night.parent.name == "nightly" and re.fullmatch(r"\d{8}-\d{6}", night.name):
        stamp = time.strptime(night.name, "%Y%m%d-%H%M%S")
        return f"night {time.strftime('%Y-%m-%d %H:%M', stamp)} · {store.run_id}"
    started = store.status().get("started") if not rebuilt else None
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(started or time.time())))
    return f"{'rebuilt' if rebuilt else 'run'} {when} · {store.run_id}"


class ParentView:
    """The parent MLflow run of a run in progress, best-effort: opened before compute, filled
    and closed after it. The first tracking failure prints one warning line and turns the view
    off for the rest of the run; :attr:`error` keeps that line for the run's status."""

    def __init__(self, store: RunStore, warn: Any = None) -> None:
        self.store = store
        self.uri = mlflow.get_tracking_uri()
        self.run_id: str | None = None
        self.error: str | None = None
        self._warn = warn or (lambda line: print(f"harness: warning: {line}", file=sys.stderr))

    def open(self, experiment: Experiment, tags: dict[str, str]) -> None:
        bound_http()
        try:
            with _store_lock():
                _set_experiment(experiment.name)
                clean = {k: strip_control(v) for k, v in tags.items()}
                run = mlflow.start_run(run_name=parent_name(self.store), tags=clean)
                self.run_id = run.info.run_id
                retire_other_parents(self.store, keep=run.info.run_id)
            mlflow.log_params(flatten_params(experiment.model_dump(mode="json")))
        except Exception as exc:  # a view never fails the run it views
            self.lost(exc)

    def log(self, summary: list[dict[str, Any]], report: Path | None) -> None:
        """Nested runs, metrics and artifacts; then every other parent of this run directory
        (a rebuild made while the run was computing) is retired: one active parent."""
        if self.run_id is None or self.error is not None:
            return
        try:
            log_summary(summary, self.store, report)
            with _store_lock():
                retire_other_parents(self.store, keep=self.run_id)
        except Exception as exc:
            self.lost(exc)

    def close(self, status: str) -> None:
        """End the parent run FINISHED, FAILED or KILLED (after an outage: forget it; the next
        ``harness log`` or run retires it)."""
        if self.run_id is not None and self.error is None:
            try:
                mlflow.end_run(status=status)
                return
            except Exception as exc:
                self.lost(exc)
        _forget_active_runs()

    def lost(self, exc: BaseException | str) -> None:
        if self.error is None:
            self.error = unreachable(self.uri, exc, self.store.dir)
            self._warn(self.error)
        _forget_active_runs()


def close_stale_run(status: dict[str, Any]) -> str | None:
    """Mark the MLflow run of a run directory whose process died (its status still says
    ``running``) KILLED, with an end time; returns its id when it was still RUNNING."""
    run_id = status.get("mlflow_run_id")
    if not run_id:
        return None
    bound_http()
    client = mlflow.MlflowClient(tracking_uri=status.get("tracking_uri") or None)
    try:
        info = client.get_run(run_id).info
    except Exception:  # the store moved or the run was deleted: nothing left to close
        return None
    if info.status != "RUNNING":
        return None
    try:
        client.set_terminated(run_id, status="KILLED")
    except Exception:  # the store answered a read, then failed: the next writer tries again
        return None
    return str(run_id)


def log_summary(summary: list[dict[str, Any]], store: RunStore, report: Path | None) -> None:
    """Log nested runs (one per SAE × study): at most :data:`MAX_METRIC_KEYS` metric keys each
    (headline metrics first, the dose curve counted), every summary row in
    :data:`ROWS_ARTIFACT`; then the parent's artifacts."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in summary:
        groups.setdefault((row["sae"], row["study"]), []).append(row)
    experiment = store.experiment()
    specs = {s.name: s for s in experiment.studies}
    parent_tags = {k: strip_control(v) for k, v in run_tags(experiment, store).items()}
    for (sae, study), rows in groups.items():
        with mlflow.start_run(
            run_name=f"{sae} × {study}",
            nested=True,
            tags={**parent_tags, "sae": sae, "study": study},
        ):
            dose = log_dose_response(rows)
            metrics, used = headline_metrics(rows, specs.get(study), MAX_METRIC_KEYS - dose)
            mlflow.log_metrics(metrics)
            mlflow.log_text(rows_csv(rows), ROWS_ARTIFACT)
            mlflow.set_tag(
                "harness.metrics",
                f"{used} of {len(rows)} summary rows as metrics ({len(metrics) + dose} keys); "
                f"every row in {ROWS_ARTIFACT}",
            )
    from harness.analysis.aggregate import judge_totals

    totals = judge_totals(store)
    mlflow.log_metrics(
        {f"judge/{k}": float(v) for k, v in totals.items() if k != "unscored_reasons"}
    )
    mlflow.log_metrics(_human_agreement_metrics(store))
    for name in ("spec.json", "provenance.json", "records.jsonl", "summary.json"):
        path = store.dir / name
        if path.exists():
            mlflow.log_artifact(str(path), artifact_path="run")
    if report is not None:
        mlflow.log_artifact(str(report), artifact_path="report")
        plots = report.with_name(f"{store.run_id}-files")
        if plots.is_dir():
            mlflow.log_artifacts(str(plots), artifact_path=f"report/{plots.name}")


def _human_agreement_metrics(store: RunStore) -> dict[str, float]:
    """Each model judge against each annotator (``judge_vs_human/<rubric>/<judge>/<human>/…``:
    exact, kappa, weighted_kappa with their CIs and n), where the run holds human labels."""
    from harness.analysis.judge_agreement import item_texts
    from harness.analysis.judge_validity import human_agreements, is_human

    out: dict[str, float] = {}
    for a in human_agreements(list(store.records("judgement")), item_texts(store)):
        human = next(j for j in a.judges if is_human(j))
        judge = next(j for j in a.judges if not is_human(j))
        for name in ("exact", "kappa", "weighted_kappa"):
            e = getattr(a, name)
            base = metric_key("judge_vs_human", a.rubric, judge, human, name)
            if e.value == e.value:
                out[base] = e.value
                if e.ci_low == e.ci_low:
                    out[base + ".ci_low"], out[base + ".ci_high"] = e.ci_low, e.ci_high
            out[base + ".n"] = float(e.n)
    return out


def log_run(store: RunStore, summary: list[dict[str, Any]], report: Path | None) -> str:
    """Rebuild the MLflow view of a stored run (``harness log``, and after ``rescore``): one
    parent run tagged ``harness.view=rebuilt`` with its nested runs, replacing the previous
    rebuild of the same run id rather than adding to it. Attempts that a dead process left
    RUNNING are marked KILLED. Call it holding the run's writer lock (``harness log`` and
    ``rescore`` do): no run of it is in progress then. Returns the new parent run's id."""
    bound_http()
    experiment = store.experiment()
    with _store_lock():
        _set_experiment(experiment.name)
    tags = {k: strip_control(v) for k, v in run_tags(experiment, store).items()}
    name = parent_name(store, rebuilt=True)
    with mlflow.start_run(run_name=name, tags={**tags, "harness.view": "rebuilt"}) as run:
        with _store_lock():
            retire_other_parents(store, keep=run.info.run_id)
        mlflow.log_params(flatten_params(experiment.model_dump(mode="json")))
        log_summary(summary, store, report)
    return str(run.info.run_id)


def retire_other_parents(store: RunStore, keep: str) -> list[str]:
    """One parent run per harness run id and run directory: every other parent of this run
    (an earlier attempt, killed or finished, or an earlier rebuild) is deleted with its nested
    runs (the same spec run in another directory, e.g. each night's ``nightly`` run, keeps its
    own), after an attempt a dead process left RUNNING is marked KILLED. Deleted runs leave the
    UI and ``search_runs`` but keep their status for ``get_run`` (``mlflow gc`` purges them).
    Every caller holds the run's writer lock, so no other parent belongs to a live run. Returns
    the ids retired."""
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
            client.set_terminated(run.info.run_id, status="KILLED")
        for child in client.search_runs(
            ids, filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
        ):
            client.delete_run(child.info.run_id)
        client.delete_run(run.info.run_id)
        retired.append(run.info.run_id)
    return retired
