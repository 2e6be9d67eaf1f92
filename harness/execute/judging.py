"""The judges of a run, and judging after compute: ``judge_cells`` (the driver's step after an
executor), the run-level unscored threshold, and ``harness rescore``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.analysis.aggregate import judge_totals, summarise
from harness.errors import HarnessError
from harness.execute.cells import Cell
from harness.execute.options import Bars, RunOptions
from harness.judge.base import Judge
from harness.judge.offline import OfflineJudge
from harness.judge.rubric import load_rubric
from harness.spec import Experiment, JudgeSettings
from harness.store import RunStore
from harness.studies.registry import kind_of

__all__ = ["check_unscored", "judge_cells", "make_judge", "make_judges", "rescore"]


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
    if settings.is_offline():
        from harness.toy.lexicon import topic_lexicon

        return OfflineJudge(
            rubric, topic_lexicon(), semantic=settings.effective_kind() == "offline"
        )
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
        budget=options.budget,
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


class _Named:
    """An SAE by its label alone: what judging needs of it (no model is loaded)."""

    def __init__(self, label: str) -> None:
        self.label = label


def judge_cells(
    exp: Experiment,
    store: RunStore,
    cells: list[Cell],
    judges: list[Judge],
    study_judges: dict[str, Judge],
    options: RunOptions,
    progress: Callable[[str, int, int], None],
) -> None:
    """Judge what every cell stored and is not judged yet (after a remote executor, all of it;
    after the local one, what an earlier run left unscored); cached judgements are free."""
    from harness.studies.contract import StudyContext

    for cell in cells:
        if cell.study_index is None:
            continue
        study = exp.studies[cell.study_index]
        ctx = StudyContext(
            exp,
            None,
            _Named(cell.sae),
            None,
            judges,
            store,
            options.batch_size,
            progress,
            {},
            study_judges=study_judges,
            judge_batch=options.judge_batch,
        )
        kind_of(study).judge(ctx, study, f"studies.{cell.study_index}")


def rescore(
    store: RunStore, rubric: str | None, reports_dir: Path, judge: str | None = None
) -> tuple[int, Path]:
    """Judge a run's stored generations again (no model, no generation), with another rubric
    and/or another judge (``offline``, ``offline-keyword``, ``anthropic``); returns the number
    of new judgements and the rebuilt report's path."""

    with store.writer_lock():  # one writer per run: not while a run of it is in progress
        return _rescore_locked(store, rubric, reports_dir, judge)


def _rescore_locked(
    store: RunStore, rubric: str | None, reports_dir: Path, judge: str | None
) -> tuple[int, Path]:
    from harness.judge.service import judge_generations
    from harness.views.report.markdown import write_report

    exp = store.experiment()
    update = {"rubric": rubric, "kind": judge}
    settings = exp.judge.model_copy(update={k: v for k, v in update.items() if v is not None})
    judges = make_judges(settings)
    made = sum(judge_generations(store, exp, j, batch_size=64, progress=Bars(True)) for j in judges)
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
    if status.get("mlflow_run_id") or status.get("tracking_error"):  # rebuild it, never stale
        import mlflow

        from harness.views.tracking import log_run

        if status.get("tracking_uri"):
            mlflow.set_tracking_uri(status["tracking_uri"])
        try:
            log_run(store, summary, report)
        except Exception as exc:  # the judgements are stored: the view is best-effort
            from harness.views.tracking import unreachable

            line = unreachable(mlflow.get_tracking_uri(), exc, store.dir)
            print(f"harness: warning: {line}", file=sys.stderr, flush=True)
    return made, report
