"""Run an experiment end to end: validate, load, run studies into the store, then the views.

Data flows one way: spec → store records → summary → report and MLflow. Runtime-only options
(device, batch size, where things are written) live in :class:`RunOptions` and never change an
item's identity.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from harness.aggregate import judge_totals, summarise
from harness.errors import HarnessError
from harness.judge.base import Judge
from harness.judge.offline import OfflineJudge
from harness.judge.rubric import load_rubric
from harness.spec import Experiment, JudgeSettings, sae_label
from harness.store import RunStore, default_runs_root
from harness.studies.registry import kind_of
from harness.validate import validate_static

__all__ = [
    "RunOptions",
    "RunResult",
    "make_judge",
    "make_judges",
    "rescore",
    "run_experiment",
]


@dataclass(frozen=True)
class RunOptions:
    """Runtime-only options: they change where and how fast, never what is computed."""

    runs_root: Path = field(default_factory=default_runs_root)
    reports_dir: Path = Path("reports")
    device: str | None = None  # None: the spec's model.device
    batch_size: int | None = None  # None: from a memory budget
    show_progress: bool = True
    log_to_mlflow: bool = True
    judge_concurrency: int = 32
    judge_batch: bool = False  # use the Message Batches API (Anthropic judge)
    judge_cache: Path | None = None  # None: $HARNESS_JUDGE_CACHE or ~/.cache/harness


@dataclass(frozen=True)
class RunResult:
    """Where a finished run's outputs are."""

    store: RunStore
    summary: list[dict[str, Any]]
    report_path: Path
    mlflow_run_id: str | None


def make_judges(settings: JudgeSettings, options: RunOptions | None = None) -> list[Judge]:
    """One judge per rubric, the primary rubric first."""
    return [
        make_judge(settings, name, options) for name in (settings.rubric, *settings.extra_rubrics)
    ]


def make_judge(
    settings: JudgeSettings, rubric_name: str | None = None, options: RunOptions | None = None
) -> Judge:
    """The judge a spec asks for (``auto``: Anthropic when a key is set, else offline)."""
    rubric = load_rubric(rubric_name or settings.rubric)
    if settings.effective_kind() == "offline":
        return OfflineJudge(rubric)
    from harness.judge.anthropic_judge import AnthropicJudge
    from harness.judge.cache import JudgeCache, default_cache_path

    options = options or RunOptions()
    return AnthropicJudge(
        rubric,
        settings.model,
        cache=JudgeCache(options.judge_cache or default_cache_path()),
        max_concurrency=options.judge_concurrency,
    )


def check_unscored(exp: Experiment, store: RunStore) -> None:
    """Rule 3's run-level threshold: too many failed judgements fail the run (exit 1); the
    results stay in the store and the report, with the unscored counts and reasons."""
    totals = judge_totals(store)
    if totals["judgements"] and (
        totals["unscored"] / totals["judgements"] > exp.judge.max_unscored_fraction
    ):
        reasons = ", ".join(f"{r} ×{n}" for r, n in totals["unscored_reasons"].items())
        raise HarnessError(
            f"{totals['unscored']} of {totals['judgements']} judgements are unscored, above "
            f"judge.max_unscored_fraction={exp.judge.max_unscored_fraction} ({reasons})"
        )


class _Bars:
    """One tqdm bar per stage name; a no-op when progress is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="item", leave=True)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            del self.bars[stage]  # the next study's stage of the same name gets a fresh bar

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run_experiment(
    exp: Experiment, options: RunOptions, say: Callable[[str], None] = print
) -> RunResult:
    """Run (or resume) every study of ``exp`` on every SAE, then write summary, report, MLflow."""
    # Heavy imports here, so `harness --help` and `harness validate` stay fast.
    from harness.backend import load_model, load_sae, neuronpedia_id, resolve_device
    from harness.feature_stats import cached_activation_stats, stats_corpus
    from harness.features import resolve_feature
    from harness.provenance import collect_provenance
    from harness.report.markdown import write_report
    from harness.sae_quality import QUALITY_NEEDS_CORPUS, quality_measurable, record_quality
    from harness.studies.contract import StudyContext
    from harness.toy.world import eval_documents
    from harness.tracking import log_summary, mlflow_run
    from harness.validate import study_features, validate_loaded

    validate_static(exp)
    judges = make_judges(exp.judge, options)
    judge = judges[0]
    device = resolve_device(options.device or exp.model.device)
    store = RunStore.for_experiment(exp, options.runs_root)
    provenance = collect_provenance(device, judge.name, judge.rubric.ident)
    provenance["rubrics"] = {j.rubric.name: j.rubric.ident for j in judges}
    study_judges = {
        name: make_judge(exp.judge, name, options)
        for study in exp.studies
        for name in kind_of(study).rubrics
    }
    if study_judges:
        provenance["study_rubrics"] = {n: j.rubric.ident for n, j in study_judges.items()}
    store.write_json("provenance.json", provenance)
    say(f"run {store.run_id} → {store.dir}  (judge: {judge.name}, rubric {judge.rubric.ident})")

    tags = {
        "harness.spec_hash": exp.spec_hash(),
        "harness.run_dir": str(store.dir.resolve()),
        "harness.judge": judge.name,
        "harness.rubric": judge.rubric.ident,
        "harness.rubrics": ", ".join(j.rubric.ident for j in judges),
        "harness.git_commit": str(provenance["git_commit"]),
        "harness.git_dirty": str(provenance["git_dirty"]),
        **{f"harness.version.{k}": v for k, v in provenance["packages"].items()},
        **{f"harness.tag.{t}": "1" for t in exp.tags},
    }
    bars = _Bars(options.show_progress)
    mlflow_id: str | None = None

    def body() -> tuple[list[dict[str, Any]], Path]:
        model = load_model(exp.model, device)
        saes = [load_sae(ref, sae_label(ref), device) for ref in exp.saes]
        validate_loaded(exp, model, saes)
        by_label = {sae.label: sae for sae in saes}
        for sae in saes:  # resolve every feature before the first generation
            for path, ref in study_features(exp):
                resolve_feature(model, sae, ref, path, by_label)
        docs = eval_documents()
        needs_stats = any(kind_of(s).needs_stats for s in exp.studies)
        quality = exp.sae_quality if quality_measurable(exp) else None
        if exp.sae_quality is not None and quality is None:
            say(f"SAE quality not measured: {QUALITY_NEEDS_CORPUS}")
        stat_docs, source = stats_corpus(exp) if needs_stats or quality else ([], "")
        model_identity = exp.model.model_dump(mode="json", exclude={"device"})
        for sae in saes:
            if quality is not None:
                measured = record_quality(
                    model,
                    sae,
                    quality,
                    stat_docs,
                    source,
                    store,
                    lambda done, total: bars("SAE quality", done, total),
                )
                say(f"SAE quality of {sae.label}: " + ("measured" if measured else "stored"))
            stats = None
            if needs_stats:
                stats, cached = cached_activation_stats(
                    model, model_identity, sae, stat_docs, source
                )
                say(
                    f"feature statistics for {sae.label}: {source}, {stats.n_tokens} tokens"
                    + (" (cached)" if cached else "")
                )
            ctx = StudyContext(
                exp,
                model,
                sae,
                stats,
                judges,
                store,
                options.batch_size,
                bars,
                by_label,
                documents=docs,
                study_judges=study_judges,
                neuronpedia=neuronpedia_id(exp.saes[saes.index(sae)]),
                judge_batch=options.judge_batch,
            )
            for i, study in enumerate(exp.studies):
                kind_of(study).run(ctx, study, f"studies.{i}")
        bars.close()
        summary = summarise(store, exp.seed)
        store.write_json("summary.json", summary)
        return summary, write_report(store, summary, options.reports_dir)

    started = time.time()
    store.write_json("status.json", {"status": "running", "started": started})
    try:
        if options.log_to_mlflow:
            with mlflow_run(exp, store, tags) as mlflow_id:
                summary, report_path = body()
                log_summary(summary, store, report_path)
                check_unscored(exp, store)
        else:
            summary, report_path = body()
            check_unscored(exp, store)
    except BaseException as exc:
        status = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.write_json(
            "status.json",
            {"status": status, "started": started, "ended": time.time(), "error": repr(exc)[:500]},
        )
        raise
    store.write_json(
        "status.json",
        {
            "status": "finished",
            "started": started,
            "ended": time.time(),
            "mlflow_run_id": mlflow_id,
        },
    )
    return RunResult(store, summary, report_path, mlflow_id)


def rescore(store: RunStore, rubric: str | None, reports_dir: Path) -> tuple[int, Path]:
    """Judge a run's stored generations again (no model, no generation); returns the number of
    new judgements and the rebuilt report's path."""
    from harness.report.markdown import write_report
    from harness.scoring import judge_generations

    exp = store.experiment()
    settings = exp.judge if rubric is None else exp.judge.model_copy(update={"rubric": rubric})
    judges = make_judges(settings)
    made = sum(
        judge_generations(store, exp, j, batch_size=64, progress=_Bars(True)) for j in judges
    )
    provenance = store.read_json("provenance.json")
    provenance.update(
        judge=judges[0].name,
        rubric=judges[0].rubric.ident,
        rubrics={j.rubric.name: j.rubric.ident for j in judges},
    )
    store.write_json("provenance.json", provenance)
    summary = summarise(store, exp.seed)
    store.write_json("summary.json", summary)
    return made, write_report(store, summary, reports_dir)
