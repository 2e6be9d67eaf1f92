"""A run as an Inspect AI eval log (``harness export inspect RUN --out DIR``), so ``inspect
view DIR`` lists it and its samples beside a lab's other evaluations.

Built from the store like every other view, with ``inspect_ai``'s own log types and writer: one
sample per judged generation (input: the prompt as the model saw it; output: the continuation;
metadata: SAE, study, condition, prompt set, level, clamp value and feature), and one score per
rubric and judge (``concept_presence/offline-semantic-v1``; human labels too). An unscored
judgement is Inspect's unscored score (NaN, with the reason), never a 0. The results give each
score's mean over its scored samples and the counts of scored and unscored ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.store import RunStore

__all__ = ["export_inspect", "score_name"]


def score_name(rubric: str, judge: str) -> str:
    """An Inspect score's name: rubric name and judge (``concept_presence/offline-semantic-v1``)."""
    return f"{rubric.split('@', 1)[0]}/{judge}"


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds))


def _final(judgements: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """One judgement per (item, rubric ident, judge): its scored attempt, else its last."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for j in sorted(judgements, key=lambda j: j.get("attempt", 0)):
        key = (j["of"], j["rubric"], j["judge"])
        if key not in out or out[key]["score"] is None:
            out[key] = j
    return out


def export_inspect(store: RunStore, out_dir: Path) -> Path:
    """Write the run's eval log (``.eval``) into ``out_dir``; returns its path."""
    try:
        from inspect_ai.log import (
            EvalConfig,
            EvalDataset,
            EvalLog,
            EvalMetric,
            EvalPlan,
            EvalResults,
            EvalSample,
            EvalScore,
            EvalSpec,
            EvalStats,
            write_eval_log,
        )
        from inspect_ai.model import ModelOutput
        from inspect_ai.scorer import Score
    except ImportError:
        raise HarnessError(
            "`harness export inspect` needs Inspect AI: pip install 'harness[inspect]' (or "
            "inspect_ai)"
        ) from None
    exp = store.experiment()
    prov: Mapping[str, Any] = store.read_json("provenance.json")
    status = store.status()
    model = str(getattr(exp.model, "name", "toy"))
    finals = _final(list(store.records("judgement")))
    by_item: dict[str, list[dict[str, Any]]] = {}
    for j in finals.values():
        by_item.setdefault(j["of"], []).append(j)
    samples = []
    totals: dict[str, list[float]] = {}
    unscored: dict[str, int] = {}
    for g in store.records("generation"):
        judged = by_item.get(g["key"])
        if not judged:
            continue
        scores = {}
        for j in sorted(judged, key=lambda j: (j["rubric"], j["judge"])):
            name = score_name(j["rubric"], j["judge"])
            if j["score"] is None:
                scores[name] = Score.unscored(
                    reason=str(j["unscored_reason"]),
                    answer=g["continuation"],
                    explanation=str(j["raw_reply"])[:2000],
                )
                unscored[name] = unscored.get(name, 0) + 1
            else:
                scores[name] = Score(
                    value=int(j["score"]),
                    answer=g["continuation"],
                    explanation=str(j["raw_reply"])[:2000],
                )
                totals.setdefault(name, []).append(float(j["score"]))
        samples.append(
            EvalSample(
                id=g["key"],
                epoch=1,
                input=g["prompt"],
                target="",
                output=ModelOutput.from_content(model, g["continuation"]),
                scores=scores,
                metadata={
                    "sae": g["sae"],
                    "study": g["study"],
                    "condition": g["condition"],
                    "prompt_set": g.get("prompt_set", "target"),
                    "prompt_index": g["prompt_index"],
                    "level": g.get("level"),
                    "clamp_value": g.get("clamp_value"),
                    "feature": g.get("feature"),
                },
            )
        )
    if not samples:
        raise HarnessError(f"run {store.run_id} has no judged generation to export")
    started = float(status.get("started") or (store.dir / "spec.json").stat().st_mtime)
    finished = float(status.get("ended") or started)
    names = sorted(set(totals) | set(unscored))
    means = {n: sum(v) / len(v) for n, v in totals.items() if v}
    results = EvalResults(
        total_samples=len(samples),
        completed_samples=len(samples),
        scores=[
            EvalScore(
                name=name,
                scorer=name,
                scored_samples=len(totals.get(name, [])),
                unscored_samples=unscored.get(name, 0),
                metrics={"mean": EvalMetric(name="mean", value=means.get(name, math.nan))},
            )
            for name in names
        ],
    )
    spec = EvalSpec(
        eval_id=store.run_id,
        run_id=store.run_id,
        created=_iso(started),
        task=exp.name,
        task_id=exp.spec_hash()[:22],
        task_version=1,
        task_description=exp.description or None,
        dataset=EvalDataset(name=exp.name, samples=len(samples)),
        model=model,
        config=EvalConfig(),
        tags=list(exp.tags),
        metadata={
            "harness_run": store.run_id,
            "spec_hash": exp.spec_hash(),
            "judge": prov.get("judge"),
            "rubric": prov.get("rubric"),
            "run_dir": str(store.dir),
        },
    )
    log = EvalLog(
        status="success" if status.get("status") == "finished" else "started",
        eval=spec,
        plan=EvalPlan(),
        results=results,
        stats=EvalStats(started_at=_iso(started), completed_at=_iso(finished)),
        samples=samples,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    # Inspect's own file name: <time>_<task>_<id>.eval, the task without underscores
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S-00-00", time.gmtime(started))
    task = exp.name.replace("_", "-")
    path = out_dir / f"{stamp}_{task}_{store.run_id.rsplit('-', 1)[-1]}.eval"
    write_eval_log(log, str(path))
    return path
