"""Run an experiment end to end: validate, load, run studies into the store, then the views.

Data flows one way: spec → store records → summary → report and MLflow. Runtime-only options
(device, batch size, where things are written) live in :class:`RunOptions` and never change an
item's identity.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from harness.analysis.aggregate import judge_totals, summarise
from harness.errors import HarnessError
from harness.judge.base import Judge
from harness.judge.offline import OfflineJudge
from harness.judge.rubric import load_rubric
from harness.spec import Experiment, JudgeSettings, sae_label
from harness.spec.validate import validate_static
from harness.store import RunStore, default_runs_root
from harness.studies.registry import kind_of

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
    judge_concurrency: int | None = None  # None: the spec's judge.concurrency, else 32
    judge_timeout_s: float | None = None  # None: the spec's judge.timeout_s, else 60
    judge_retries: int | None = None  # None: the spec's judge.max_retries, else 6
    judge_batch: bool = False  # use the Message Batches API (Anthropic judge)
    judge_cache: Path | None = None  # None: $HARNESS_JUDGE_CACHE or ~/.cache/harness
    wait: bool = False  # another process writes the same run: wait for it (else refuse, exit 2)


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
        from harness.toy.lexicon import topic_lexicon

        return OfflineJudge(rubric, topic_lexicon())
    from harness.judge.anthropic_judge import AnthropicJudge
    from harness.judge.cache import JudgeCache, default_cache_path

    options = options or RunOptions()

    def pick(cli: Any, spec: Any, default: Any) -> Any:
        return cli if cli is not None else spec if spec is not None else default

    return AnthropicJudge(
        rubric,
        settings.model,
        cache=JudgeCache(options.judge_cache or default_cache_path()),
        max_concurrency=pick(options.judge_concurrency, settings.concurrency, 32),
        timeout_s=pick(options.judge_timeout_s, settings.timeout_s, 60.0),
        max_retries=pick(options.judge_retries, settings.max_retries, 6),
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
    """Progress per stage, on stderr (stdout stays for results): a tqdm bar on a terminal;
    elsewhere (CI logs, nox, a pipe) one clean line when the stage ends; nothing when off."""

    def __init__(self, enabled: bool, tty: bool | None = None) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.bars: dict[str, Any] = {}
        self.started: dict[str, tuple[float, int]] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        if not self.tty:
            first = self.started.setdefault(stage, (time.monotonic(), done))
            if done >= total:
                del self.started[stage]
                made = total - first[1]
                took = time.monotonic() - first[0]
                what = f"{made} done in {took:.1f} s" if made else "all stored already"
                print(f"{stage}: {total} items, {what}", file=sys.stderr, flush=True)
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


def _say(text: str) -> None:
    print(text, flush=True)  # progress lines reach a pipe (CI logs, a waiting peer) at once


def run_experiment(
    exp: Experiment, options: RunOptions, say: Callable[[str], None] = _say
) -> RunResult:
    """Run (or resume) every study of ``exp`` on every SAE, then write summary, report, MLflow."""
    validate_static(exp)  # every spec error before any model code is imported
    judges = make_judges(exp.judge, options)
    from harness.engine.backend import resolve_device

    device = resolve_device(options.device or exp.model.device)
    store = RunStore.for_experiment(exp, options.runs_root)
    with store.writer_lock(wait=options.wait, say=say):
        store.remove_stale_temp_files()
        moved = store.set_aside_damaged()
        if moved:
            say(
                f"set {moved} damaged record line(s) aside in {store.dir}/records.damaged.jsonl; "
                "their items are redone"
            )
        # holding the lock, a status still "running" was left by a process that died
        previous = store.read_json("status.json") if (store.dir / "status.json").exists() else {}
        if previous.get("status") == "running" and options.log_to_mlflow:
            from harness.views.tracking import close_stale_run

            if close_stale_run(previous):
                say(
                    f"the previous attempt's MLflow run {previous['mlflow_run_id']} was left "
                    "RUNNING by a process that died; marked KILLED"
                )
        return _run_locked(exp, options, store, judges, device, say)


def _run_locked(
    exp: Experiment,
    options: RunOptions,
    store: RunStore,
    judges: list[Judge],
    device: str,
    say: Callable[[str], None],
) -> RunResult:
    """The body of :func:`run_experiment`, holding the run directory's writer lock."""
    from harness.engine.backend import load_model, load_sae, neuronpedia_id
    from harness.engine.feature_stats import cached_activation_stats, stats_corpus
    from harness.engine.features import resolve_feature
    from harness.engine.sae_quality import QUALITY_NEEDS_CORPUS, quality_measurable, record_quality
    from harness.execute.provenance import collect_provenance
    from harness.spec.validate import study_features, validate_loaded
    from harness.studies.contract import StudyContext
    from harness.toy.world import eval_documents
    from harness.views.report.markdown import write_report
    from harness.views.tracking import log_summary, mlflow_run, run_tags

    judge = judges[0]
    provenance = collect_provenance(device, judge.name, judge.rubric.ident)
    provenance["rubrics"] = {j.rubric.name: j.rubric.ident for j in judges}
    study_judges = {
        name: make_judge(exp.judge, name, options)
        for study in exp.studies
        for name in kind_of(study).rubrics
    }
    if study_judges:
        provenance["study_rubrics"] = {n: j.rubric.ident for n, j in study_judges.items()}
    # the rubric texts as judged: views rebuilt later never read today's rubric files
    provenance["rubric_texts"] = {
        j.rubric.ident: j.rubric.text for j in [*judges, *study_judges.values()]
    }
    store.write_json("provenance.json", provenance)
    say(f"run {store.run_id} → {store.dir}  (judge: {judge.name}, rubric {judge.rubric.ident})")

    tags = run_tags(exp, store)
    bars = _Bars(options.show_progress)
    mlflow_id: str | None = None
    tracking_uri: str | None = None

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
        contexts = []
        for sae in saes:
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
            for i, study in enumerate(exp.studies):  # all checks before the first generation
                kind_of(study).check_loaded(ctx, study, f"studies.{i}")
            contexts.append(ctx)
        for ctx in contexts:
            if quality is not None:
                measured = record_quality(
                    model,
                    ctx.sae,
                    quality,
                    stat_docs,
                    source,
                    store,
                    lambda done, total: bars("SAE quality", done, total),
                )
                say(f"SAE quality of {ctx.sae.label}: " + ("measured" if measured else "stored"))
            for i, study in enumerate(exp.studies):
                kind_of(study).run(ctx, study, f"studies.{i}")
        bars.close()
        summary = summarise(store, exp.seed)
        store.write_json("summary.json", summary)
        return summary, write_report(store, summary, options.reports_dir)

    started = time.time()
    store.write_json("status.json", {"status": "running", "started": started, "pid": os.getpid()})
    try:
        if options.log_to_mlflow:
            with mlflow_run(exp, store, tags) as mlflow_id:
                import mlflow

                tracking_uri = mlflow.get_tracking_uri()
                store.write_json(
                    "status.json",
                    {
                        "status": "running",
                        "started": started,
                        "pid": os.getpid(),
                        "mlflow_run_id": mlflow_id,
                        "tracking_uri": tracking_uri,
                    },
                )
                summary, report_path = body()
                log_summary(summary, store, report_path)
                check_unscored(exp, store)
        else:
            summary, report_path = body()
            check_unscored(exp, store)
    except BaseException as exc:
        status = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
        try:
            store.write_json(
                "status.json",
                {
                    "status": status,
                    "started": started,
                    "ended": time.time(),
                    "error": repr(exc)[:500],
                    "mlflow_run_id": mlflow_id,
                },
            )
        except OSError:  # the disk that failed the run may refuse this too; the lock tells
            pass
        raise
    store.write_json(
        "status.json",
        {
            "status": "finished",
            "started": started,
            "ended": time.time(),
            "mlflow_run_id": mlflow_id,
            "tracking_uri": tracking_uri,
        },
    )
    return RunResult(store, summary, report_path, mlflow_id)


def rescore(store: RunStore, rubric: str | None, reports_dir: Path) -> tuple[int, Path]:
    """Judge a run's stored generations again (no model, no generation); returns the number of
    new judgements and the rebuilt report's path."""

    with store.writer_lock():  # one writer per run: not while a run of it is in progress
        return _rescore_locked(store, rubric, reports_dir)


def _rescore_locked(store: RunStore, rubric: str | None, reports_dir: Path) -> tuple[int, Path]:
    from harness.judge.service import judge_generations
    from harness.views.report.markdown import write_report

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
        rubric_texts={
            **(provenance.get("rubric_texts") or {}),
            **{j.rubric.ident: j.rubric.text for j in judges},
        },
    )
    store.write_json("provenance.json", provenance)
    summary = summarise(store, exp.seed)
    store.write_json("summary.json", summary)
    report = write_report(store, summary, reports_dir)
    status = store.status()
    if status.get("mlflow_run_id"):  # the run has an MLflow view: rebuild it, never stale
        from harness.views.tracking import log_run

        if status.get("tracking_uri"):
            import mlflow

            mlflow.set_tracking_uri(status["tracking_uri"])
        log_run(store, summary, report)
    return made, report
