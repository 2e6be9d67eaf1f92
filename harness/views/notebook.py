"""The Python API for notebooks: a stored run as pandas DataFrames.

>>> import harness
>>> run = harness.load_run("latest")          # a run id, a directory, "latest" (finished)
>>> run.summary.query("metric == 'concept_score'")
>>> run.items.groupby("condition").concept_score.mean()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.aggregate import SUMMARY_COLUMNS, summarise
from harness.analysis.quality import QUALITY_STUDY
from harness.judge.rubric import rubric_metric
from harness.spec import Experiment, sae_label
from harness.store import RunStore, default_runs_root
from harness.studies.contract import ItemKey
from harness.studies.items import split_condition
from harness.studies.registry import kind_of

__all__ = ["ITEM_METRICS", "ItemKey", "LoadedRun", "load_run"]

_ITEM_COLUMNS = {
    "concept_score": "concept_score",
    "fluency_score": "fluency_score",
    "instruction_score": "instruction_score",
    "drift": "drift",
    "concept_gain": "concept_gain",
    "nll": "nll",
}
ITEM_METRICS = (
    *_ITEM_COLUMNS,
    "kl_mean",
    "top1_changed",
    "metric_shift",
)


@dataclass(frozen=True)
class LoadedRun:
    """A run read back from its store.

    ``summary``: one row per aggregate (``sae, study, condition, metric, value, ci_low, ci_high,
    n``). ``items``: one row per generation with its prompt, continuation, clamp value, the score
    of every active rubric (a column per rubric named as its summary metric: ``concept_score``,
    ``fluency_score``, ``instruction_score``; NaN when unscored) and its measures (``drift``,
    ``concept_gain``, ``nll``). ``next_token``: one row per prompt and intervention of the
    next-token tables. ``records``: every stored record, as stored.
    """

    run_id: str
    directory: Path
    experiment: Experiment
    provenance: dict[str, Any]
    summary: pd.DataFrame
    items: pd.DataFrame
    next_token: pd.DataFrame
    records: pd.DataFrame

    def __repr__(self) -> str:
        """One line (a notebook cell's echo): what the run is, not its frames."""
        exp = self.experiment
        return (
            f"LoadedRun({self.run_id!r}: {len(exp.saes)} SAE(s), {len(exp.studies)} "
            f"stud{'y' if len(exp.studies) == 1 else 'ies'}, {len(self.summary)} summary rows, "
            f"{len(self.items)} items, judge {self.provenance.get('judge', '–')!r}, "
            f"dir {str(self.directory)!r})"
        )

    def item_values(self, metric: str) -> dict[ItemKey, float]:
        """Per-item values of an item-level metric, keyed by (SAE position in the spec, study,
        condition, prompt set, prompt index) for pairing across runs and checkpoints, from
        every study whose kind offers the metric. Unscored or unmeasured items have no value
        (never a 0)."""
        out: dict[ItemKey, float] = {}
        for study in self.experiment.studies:
            kind = kind_of(study)
            if any(h.metric == metric for h in kind.metrics):
                out.update(kind.item_values(self, study, metric))
        return out

    def record_item_values(self, metric: str, study: str | None = None) -> dict[ItemKey, float]:
        """Per-item values of a metric of generations (judged scores, drift, concept gain, nll)
        or of next-token records (kl_mean, top1_changed, metric_shift), of one study or all."""
        out = {k: v for k, v in self._record_item_values(metric).items() if study in (None, k[1])}
        return out

    def _record_item_values(self, metric: str) -> dict[ItemKey, float]:
        position = {sae_label(ref): i for i, ref in enumerate(self.experiment.saes)}
        out: dict[ItemKey, float] = {}
        if metric in ("kl_mean", "top1_changed", "metric_shift"):
            for r in self.next_token.to_dict("records") if len(self.next_token) else []:
                if metric == "metric_shift":
                    if "metric_base" not in r or r["metric_base"] != r["metric_base"]:
                        continue
                    value = r["metric_iv"] - r["metric_base"]
                else:
                    value = float(r["changed"] if metric == "top1_changed" else r[metric])
                pset, cond = split_condition(r["condition"])
                out[(position[r["sae"]], r["study"], cond, pset, int(r["prompt_index"]))] = value
            return out
        column = _ITEM_COLUMNS.get(metric)
        if column is None:
            return out
        if len(self.items) == 0 or column not in self.items:
            return out
        for r in self.items.to_dict("records"):
            value = r[column]
            if value is None or value != value:
                continue
            pset, cond = split_condition(r["condition"])
            key = (position[r["sae"]], r["study"], cond, pset, int(r["prompt_index"]))
            out[key] = float(value)
        return out

    def quality_records(self) -> dict[int, dict[str, Any]]:
        """The SAE-quality record of each SAE measured, by the SAE's position in the spec."""
        position = {sae_label(ref): i for i, ref in enumerate(self.experiment.saes)}
        if "kind" not in self.records:
            return {}
        rows = self.records[self.records["kind"] == QUALITY_STUDY].to_dict("records")
        return {position[r["sae"]]: r for r in rows if r["sae"] in position}


def load_run(
    run: str | Path = "latest", runs_root: str | Path | None = None, judge: str | None = None
) -> LoadedRun:
    """Load a run by id, directory, ``latest`` (the newest finished run) or ``latest-any`` (the
    newest started, whatever its status), under ``runs_root`` (default ``$HARNESS_RUNS`` or
    ``./runs``). The summary is recomputed from the records when ``summary.json`` is missing
    (an interrupted run). ``judge``: the scores of that judge (one the run was rescored with)
    instead of the active one's; the summary is then recomputed with it too."""
    root = Path(runs_root) if runs_root is not None else default_runs_root()
    store = RunStore.open(str(run), root)
    exp = store.experiment()
    prov = store.read_json("provenance.json")
    if judge is not None:
        store = store.read_as(judge)
        prov = store.read_json("provenance.json")
    path = store.dir / "summary.json"
    stored = path.exists() and judge is None
    rows = store.read_json("summary.json") if stored else summarise(store, exp.seed)
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    # one column per active rubric, named as the summary names its metric (concept_score …)
    names = {
        ident: rubric_metric(name, ident == prov["rubric"])
        for name, ident in (prov.get("rubrics") or {}).items()
    }
    names.setdefault(prov["rubric"], rubric_metric(prov["rubric"].split("@", 1)[0], True))
    scores: dict[str, dict[str, Any]] = {}
    for j in store.judgements("*"):
        scores.setdefault(j["of"], {})[names.get(j["rubric"], j["rubric"])] = j["score"]
    measures = {m["of"]: m for m in store.records("measure")}
    items = []
    for g in store.records("generation"):
        m = measures.get(g["key"], {})
        items.append(
            {
                "key": g["key"],
                "sae": g["sae"],
                "study": g["study"],
                "condition": g["condition"],
                "prompt_set": g.get("prompt_set", "target"),
                "prompt_index": g["prompt_index"],
                "prompt": g["prompt"],
                "clamp_value": g.get("clamp_value"),
                "continuation": g["continuation"],
                **{name: scores.get(g["key"], {}).get(name) for name in names.values()},
                "drift": m.get("drift"),
                "concept_gain": m.get("concept_gain"),
                "nll": m.get("nll"),
            }
        )
    return LoadedRun(
        run_id=store.run_id,
        directory=store.dir,
        experiment=exp,
        provenance=prov,
        summary=summary,
        items=pd.DataFrame(items),
        next_token=pd.DataFrame(list(store.records("next_token"))),
        records=pd.DataFrame(list(store.records())),
    )
