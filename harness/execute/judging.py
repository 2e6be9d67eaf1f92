"""The judges of a run, and judging after compute: ``judge_cells`` (the driver's step after an
executor), the run-level unscored threshold, and ``harness rescore``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.analysis.aggregate import judge_totals, summarise
from harness.errors import HarnessError, SpecError
from harness.execute.cells import Cell
from harness.execute.options import Bars, RunOptions
from harness.judge.base import Judge
from harness.judge.offline import OfflineJudge
from harness.judge.rubric import load_rubric
from harness.spec import Experiment, JudgeSettings
from harness.store import RunStore
from harness.studies.registry import kind_of

__all__ = [
    "check_unscored",
    "judge_cells",
    "make_judge",
    "make_judges",
    "make_study_judges",
    "rebuild_view",
    "rescore",
]


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


def make_study_judges(
    exp: Experiment, settings: JudgeSettings, options: RunOptions | None = None
) -> dict[str, Judge]:
    """One judge per rubric the spec's study kinds own (e.g. specificity), by rubric name."""
    return {
        name: make_judge(settings, name, options)
        for study in exp.studies
        for name in kind_of(study).rubrics
    }


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
    store: RunStore,
    rubric: str | None,
    reports_dir: Path,
    judge: str | None = None,
    accepted_as: list[str] | None = None,
    update_baseline: bool = False,
) -> tuple[int, Path]:
    """Judge a run's stored outputs again (no model, no generation), with another rubric and/or
    another judge (``offline``, ``offline-keyword``, ``anthropic``); returns the number of new
    judgements and the rebuilt report's path.

    Each study keeps the judge that scored it unless the new judge judged all of its items (a
    kind's own items included, e.g. a specificity study's contexts). A run ``accepted_as`` a
    baseline keeps its active judgements (the gate's) unless ``update_baseline``; the new ones
    are stored next to them either way. Too many unscored judgements fail like a run does."""
    if rubric is not None:
        refuse_rubric(rubric)
    with store.writer_lock():  # one writer per run: not while a run of it is in progress
        return _rescore_locked(store, rubric, reports_dir, judge, accepted_as, update_baseline)


def refuse_rubric(rubric: str) -> None:
    """A rubric a kind owns for its own items (specificity's contexts) is no generation rubric:
    as a run's primary rubric it would judge continuations it was not written for."""
    from harness.studies.registry import kinds

    owners = [k.kind for k in kinds() if rubric in k.rubrics]
    if owners:
        raise SpecError(
            f"rubric {rubric!r} scores the {'/'.join(owners)} study's own records, not "
            "generations: it cannot be a run's primary rubric (`rescore --judge J` re-judges "
            "those records too)"
        )
    load_rubric(rubric)  # an unknown rubric: one line naming the known ones


def _study_items(store: RunStore, study: str) -> list[dict[str, Any]]:
    return [
        r
        for kind in ("generation", "context")
        for r in store.records(kind)
        if r.get("study") == study
    ]


def _rescore_locked(
    store: RunStore,
    rubric: str | None,
    reports_dir: Path,
    judge: str | None,
    accepted_as: list[str] | None,
    update_baseline: bool,
) -> tuple[int, Path]:
    from harness.execute.cells import plan_cells
    from harness.views.report.markdown import write_report

    exp = store.experiment()
    update = {"rubric": rubric, "kind": judge}
    settings = exp.judge.model_copy(update={k: v for k, v in update.items() if v is not None})
    judges = make_judges(settings)
    study_judges = make_study_judges(exp, settings)
    before = sum(1 for _ in store.records("judgement"))
    options = RunOptions(show_progress=True)
    cells = plan_cells(exp, quality=False)
    judge_cells(exp, store, cells, judges, study_judges, options, Bars(True))
    made = sum(1 for _ in store.records("judgement")) - before
    provenance = store.read_json("provenance.json")
    keeps = accepted_as and not update_baseline
    failed: list[str] = []  # studies the new judge failed on too often
    if keeps:
        print(
            f"harness: warning: run {store.run_id} is the accepted baseline "
            f"{', '.join(accepted_as or [])}: its {made} new judgements are stored (the report "
            f"gives the judges' agreement) but its gate judge stays {provenance['judge']}; "
            "pass --update-baseline to judge the baseline with the new judge",
            file=sys.stderr,
            flush=True,
        )
    else:
        if accepted_as:
            print(
                f"harness: warning: run {store.run_id} is the accepted baseline "
                f"{', '.join(accepted_as)}: from now on the gate reads it with {judges[0].name}",
                file=sys.stderr,
                flush=True,
            )
        provenance, failed = _switch_judges(store, exp, provenance, judges, study_judges)
        store.write_json("provenance.json", provenance)
    summary = summarise(store, exp.seed)
    store.write_json("summary.json", summary)
    report = write_report(store, summary, reports_dir)
    rebuild_view(store, summary, report)
    if failed:  # the new judge failed too often: the run keeps what scored it, and says so
        raise HarnessError(f"rescore: {'; '.join(failed)} (report: {report})")
    check_unscored(exp, store)
    return made, report


def _switch_judges(
    store: RunStore,
    exp: Experiment,
    provenance: dict[str, Any],
    judges: list[Judge],
    study_judges: dict[str, Judge],
) -> tuple[dict[str, Any], list[str]]:
    """The provenance after a rescore: the new judge is active for every study whose items it
    all judged, at most ``max_unscored_fraction`` of them unscored; any other study keeps
    (``study_judging``) the judge and rubric that scored it. Also returns the studies kept back
    by unscored judgements (the rescore fails on them)."""
    from harness.store.judged import study_reading

    old = {s.name: study_reading(provenance, s.name) for s in exp.studies}
    failed: list[str] = []
    primary = judges[0]
    own = {j.rubric.ident for j in study_judges.values()}
    judged: dict[tuple[str, str], bool] = {}  # (item, rubric) → scored by the new judge
    for r in store.records("judgement"):
        if r["judge"] == primary.name and (
            r["rubric"] == primary.rubric.ident or r["rubric"] in own
        ):
            pair = (r["of"], r["rubric"])
            judged[pair] = judged.get(pair, False) or r["score"] is not None
    keep: dict[str, dict[str, str]] = {}
    for study in exp.studies:
        items = _study_items(store, study.name)
        done = scored = 0
        for r in items:
            rubrics = [primary.rubric.ident] if r["kind"] == "generation" else sorted(own)
            hits = [judged[(r["key"], o)] for o in rubrics if (r["key"], o) in judged]
            done += bool(hits)
            scored += any(hits)
        if not items:
            continue
        short = done < len(items)
        unscored = done - scored
        if short or unscored > exp.judge.max_unscored_fraction * len(items):
            judge_name, rubric_ident = old[study.name]
            keep[study.name] = {"judge": judge_name, "rubric": rubric_ident}
            why = (
                f"{primary.name} judged {done} of its {len(items)} items"
                if short
                else f"{unscored} of {primary.name}'s {len(items)} judgements of it are "
                f"unscored, above judge.max_unscored_fraction={exp.judge.max_unscored_fraction}"
            )
            print(
                f"harness: study {study.name} keeps judge {judge_name} ({rubric_ident}): {why}",
                file=sys.stderr,
                flush=True,
            )
            if not short:
                failed.append(f"study {study.name}: {why}")
    updated = {
        **provenance,
        "judge": primary.name,
        "rubric": primary.rubric.ident,
        "rubrics": {j.rubric.name: j.rubric.ident for j in judges},
        "study_rubrics": {n: j.rubric.ident for n, j in study_judges.items()}
        or provenance.get("study_rubrics"),
        "study_judging": keep,
        "rubric_texts": {
            **(provenance.get("rubric_texts") or {}),
            **{j.rubric.ident: j.rubric.text for j in [*judges, *study_judges.values()]},
        },
    }
    return updated, failed


def rebuild_view(store: RunStore, summary: list[dict[str, Any]], report: Path) -> None:
    """Rebuild the run's MLflow view after its judgements changed, where it has one (best
    effort: a tracking failure is one warning line). Hold the run's writer lock."""
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
