"""The regression gate: compare a run's headline metrics with an accepted baseline run.

Items are paired across the two runs by (SAE position in the spec, study, condition, prompt set,
prompt index), so a checkpoint under a new label is still compared with the one it replaces. For
each tolerance in the spec (``Experiment.regression``) and each matching condition, the mean paired
difference (current − baseline) gets a bootstrap CI over the paired items; a condition regresses
when its mean worsens by more than the tolerance *and* the CI excludes no change.
Baselines are named by tags kept in ``<runs root>/baselines.json`` (``harness accept``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.compare_rows import JUDGED, MIN_N, keyword_judged, unvalidated_note
from harness.analysis.quality import (
    QUALITY_CONDITION,
    QUALITY_METRICS,
    QUALITY_STUDY,
    paired_quality_difference,
    quality_values,
)
from harness.analysis.stats import Estimate, bootstrap_mean
from harness.errors import StoreError
from harness.spec import Tolerance, sae_label
from harness.store import RunStore, write_atomic
from harness.studies.contract import ItemKey as Key
from harness.studies.controls import parse_control
from harness.studies.items import BASELINE, condition_order
from harness.views.notebook import LoadedRun
from harness.views.report.markdown_table import cell, fmt_estimate, table

__all__ = [
    "Check",
    "accept",
    "accepted_tags",
    "baseline_tags",
    "default_tag",
    "regress",
    "resolve_baseline",
    "unpaired_saes",
    "write_regression_report",
]


@dataclass(frozen=True)
class Check:
    """One tolerance applied to one condition of one study and SAE."""

    sae: str
    study: str
    condition: str
    metric: str
    baseline: float
    current: float
    difference: Estimate  # current − baseline, paired
    max_change: float
    higher_is_better: bool
    regressed: bool
    note: str = ""
    judge: str = ""  # the judge of both runs' scores of a judged metric ("" for a measure)


def regress(current: LoadedRun, baseline: LoadedRun, seed: int = 0) -> list[Check]:
    """Every tolerance of the current run's spec checked against the baseline, judged scores of
    both runs read with one judge (:func:`harness.analysis.gate_judge.judge_alike`: the
    baseline's, when the current run was judged by it too)."""
    from harness.analysis.gate_judge import judge_alike

    alike = judge_alike([baseline, current])
    baseline, current = alike.runs
    rng = np.random.default_rng(seed)
    labels = [sae_label(ref) for ref in current.experiment.saes]
    checks: list[Check] = []
    for tol in current.experiment.regression:
        if tol.metric in QUALITY_METRICS:
            checks.extend(_quality_checks(current, baseline, tol, labels, rng))
            continue
        now, before = current.item_values(tol.metric), baseline.item_values(tol.metric)
        groups = sorted(
            {k[:3] for k in before if _wanted(tol, k)},
            key=lambda g: (g[0], g[1], condition_order(g[2])),  # levels in numeric order
        )
        for sae_i, study, cond in groups:
            keys = sorted(k for k in before if k[:3] == (sae_i, study, cond) and k[3] == "target")
            common = [k for k in keys if k in now]
            label = labels[sae_i] if sae_i < len(labels) else f"#{sae_i}"
            if not common:
                checks.append(_missing(label, study, cond, tol, before, keys))
                continue
            a = np.array([before[k] for k in common])
            b = np.array([now[k] for k in common])
            diff = bootstrap_mean(b - a, rng)
            sign = 1.0 if tol.higher_is_better else -1.0
            worse = -sign * diff.value
            ci_excludes_zero = (diff.ci_high < 0) if tol.higher_is_better else (diff.ci_low > 0)
            regressed = worse > tol.max_change and ci_excludes_zero
            notes = [f"{len(keys) - len(common)} baseline items missing"] * (
                len(common) < len(keys)
            )
            guard = _guard(len(common), tol.metric, current, baseline, study)
            if regressed and guard:
                regressed = False  # reported, never called a regression
                notes.append(f"inconclusive ({guard})")
            note = "; ".join(notes)
            checks.append(
                Check(
                    label,
                    study,
                    cond,
                    tol.metric,
                    float(a.mean()),
                    float(b.mean()),
                    diff,
                    tol.max_change,
                    tol.higher_is_better,
                    regressed,
                    note,
                    alike.label() if tol.metric in JUDGED else "",
                )
            )
    return checks


def unpaired_saes(current: LoadedRun, baseline: LoadedRun) -> list[str]:
    """The current run's SAEs that no check covers: SAEs pair by their place in the spec, so
    those past the baseline's last SAE have nothing to be compared with."""
    labels = [sae_label(ref) for ref in current.experiment.saes]
    return labels[len(baseline.experiment.saes) :]


def _quality_checks(
    current: LoadedRun,
    baseline: LoadedRun,
    tol: Tolerance,
    labels: list[str],
    rng: np.random.Generator,
) -> list[Check]:
    """SAE-quality tolerances: the same token sequences resampled for both runs (paired)."""
    if tol.study not in (None, QUALITY_STUDY):
        return []
    now, before = current.quality_records(), baseline.quality_records()
    checks = []
    for i, label in enumerate(labels):
        if i not in before:
            continue
        base = quality_values(before[i])[tol.metric]
        if i not in now:
            checks.append(_missing_check(label, QUALITY_STUDY, QUALITY_CONDITION, tol, base))
            continue
        diff = paired_quality_difference(before[i], now[i], tol.metric, rng)
        worse = -diff.value if tol.higher_is_better else diff.value
        paired = diff.ci_low == diff.ci_low
        excludes_zero = not paired or (
            diff.ci_high < 0 if tol.higher_is_better else diff.ci_low > 0
        )
        checks.append(
            Check(
                label,
                QUALITY_STUDY,
                QUALITY_CONDITION,
                tol.metric,
                base,
                base + diff.value,
                diff,
                tol.max_change,
                tol.higher_is_better,
                worse > tol.max_change and excludes_zero,
                "" if paired else "measured on other tokens: not paired, no CI",
            )
        )
    return checks


def _guard(n: int, metric: str, current: LoadedRun, baseline: LoadedRun, study: str) -> str:
    """Why a worsening may not count as a regression: too few paired items, or judged scores
    that rest on the keyword-only offline judge's concept scores (it counts words from the
    spec's list, so a checkpoint that steers to other words reads as worse; its other rubrics
    are the semantic judge's rules), or on a judge that human labels do not validate. Empty
    when none applies."""
    if n < MIN_N:
        return f"n={n} < {MIN_N}"
    if metric == "concept_score" and (keyword_judged(current) or keyword_judged(baseline)):
        return "offline keyword judge only"
    return unvalidated_note([baseline, current], study, metric)


def _wanted(tol: Tolerance, key: Key) -> bool:
    """Target-prompt items of the tolerance's study and condition; with no condition named,
    every condition but the baseline and the controls (a control's own score is no headline:
    the feature-vs-control rows are)."""
    _, study, cond, pset, _ = key
    if pset != "target" or cond == BASELINE:
        return False
    if tol.condition is None and parse_control(cond) is not None:
        return False
    return (tol.study is None or tol.study == study) and (
        tol.condition is None or tol.condition == cond
    )


def _missing(
    label: str, study: str, cond: str, tol: Tolerance, before: dict[Key, float], keys: list[Key]
) -> Check:
    return _missing_check(label, study, cond, tol, float(np.mean([before[k] for k in keys])))


def _missing_check(label: str, study: str, cond: str, tol: Tolerance, base: float) -> Check:
    nan = float("nan")
    return Check(
        label,
        study,
        cond,
        tol.metric,
        base,
        nan,
        Estimate(nan, nan, nan, 0),
        tol.max_change,
        tol.higher_is_better,
        True,
        "missing from the current run",
    )


def write_regression_report(
    checks: list[Check],
    current: LoadedRun,
    baseline: LoadedRun,
    path: Path,
    unchecked: tuple[list[str], bool] = ([], False),
    night: str | None = None,
) -> Path:
    """A Markdown regression report: every check, regressions first, then the SAEs no check
    covered (``unchecked``: their labels, and whether they were allowed)."""
    failed = [c for c in checks if c.regressed]
    saes, allowed = unchecked
    lines = [
        f"# Regression check: {cell(current.run_id)}",
        "",
        *([f"Night: `{cell(night)}` (runs/nightly/{cell(night)}/).", ""] if night else []),
        f"Baseline: {cell(baseline.run_id)} ({cell(baseline.directory)}). Judged scores of "
        f"both runs by `{cell(_gate_judge(checks, current, baseline))}` (the gate reads both "
        "runs with one judge: the baseline's when this run was judged by it too). "
        f"Verdict: **{'REGRESSED' if failed or (saes and not allowed) else 'OK'}** — "
        f"{len(failed)} of {len(checks)} checks "
        "regressed. A check regresses when the mean paired difference worsens by more than its "
        f"tolerance and its 95% bootstrap CI excludes 0 — over at least {MIN_N} paired items and "
        "not on scores of the keyword-only offline judge alone (such a worsening is noted "
        "inconclusive instead).",
        "",
        *table(
            [
                "",
                "SAE",
                "study",
                "condition",
                "metric",
                "baseline",
                "current",
                "difference (paired)",
                "tolerance",
                "judge",
                "note",
            ],
            [
                [
                    "❌" if c.regressed else "✅",
                    cell(c.sae),
                    cell(c.study),
                    cell(c.condition),
                    cell(c.metric) + ("" if c.higher_is_better else " (lower is better)"),
                    f"{c.baseline:.3f}",
                    f"{c.current:.3f}",
                    fmt_estimate(
                        c.difference.value,
                        c.difference.ci_low,
                        c.difference.ci_high,
                        c.difference.n,
                    ),
                    f"{c.max_change:g}",
                    cell(c.judge or "–"),
                    cell(c.note),
                ]
                for c in sorted(checks, key=lambda c: not c.regressed)
            ],
        ),
        "",
    ]
    if saes:
        lines += [
            f"**Unchecked SAEs** ({'allowed by --allow-unpaired' if allowed else 'fail the gate'}"
            f"): {', '.join(cell(s) for s in saes)} — the baseline has "
            f"{len(baseline.experiment.saes)} SAE(s), and SAEs pair by their place in the spec.",
            "",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def _gate_judge(checks: list[Check], current: LoadedRun, baseline: LoadedRun) -> str:
    judges = dict.fromkeys(c.judge for c in checks if c.judge)
    if judges:
        return ", ".join(judges)
    return str(baseline.provenance.get("judge", current.provenance.get("judge", "–")))


def _tags_path(runs_root: Path) -> Path:
    return runs_root / "baselines.json"


def baseline_tags(runs_root: Path) -> dict[str, Any]:
    """Tag → {run, dir, accepted_at}."""
    path = _tags_path(runs_root)
    return json.loads(path.read_text()) if path.exists() else {}


def accepted_tags(store: RunStore, runs_root: Path) -> list[str]:
    """The tags under which ``store``'s run is an accepted baseline (none: [])."""
    here = str(store.dir.resolve())
    return sorted(t for t, v in baseline_tags(runs_root).items() if v.get("dir") == here)


def default_tag(experiment_name: str) -> str:
    """The tag ``harness accept`` uses when none is given: ``accepted/<experiment name>``."""
    return f"accepted/{experiment_name}"


def accept(store: RunStore, runs_root: Path, tag: str | None = None) -> str:
    """Tag a finished run as the accepted baseline; returns the tag."""
    status = store.read_json("status.json") if (store.dir / "status.json").exists() else {}
    if status.get("status") != "finished":
        raise StoreError(
            f"run {store.run_id} is {status.get('status', 'unknown')}, not finished; "
            "only a finished run can be accepted"
        )
    name = tag or default_tag(store.experiment().name)
    tags = baseline_tags(runs_root)
    tags[name] = {"run": store.run_id, "dir": str(store.dir.resolve()), "accepted_at": time.time()}
    runs_root.mkdir(parents=True, exist_ok=True)
    write_atomic(_tags_path(runs_root), json.dumps(tags, indent=1, sort_keys=True))
    _tag_mlflow(status.get("mlflow_run_id"), name)
    return name


def _tag_mlflow(run_id: str | None, tag: str) -> None:
    if not run_id:
        return
    try:
        import mlflow

        from harness.views.tracking import bound_http

        bound_http()  # a dead server gives up in seconds, not MLflow's ten minutes
        mlflow.MlflowClient().set_tag(run_id, "harness.accepted_as", tag)
    except Exception:  # the run store is the record; MLflow is a view that may be elsewhere
        pass


def resolve_baseline(ref: str, runs_root: Path, current: RunStore | None = None) -> RunStore:
    """A baseline by tag (``accepted/<name>`` or any tag given to ``accept``), run id or dir.

    With ``current``: a missing default tag says how to accept one, and a baseline from another
    experiment is refused (exit 2): its items would pair with nothing, or with the wrong ones."""
    tags = baseline_tags(runs_root)
    if ref in tags:
        base = RunStore.open(tags[ref]["dir"], runs_root)
    else:
        try:
            base = RunStore.open(ref, runs_root)
        except StoreError:
            if current is not None and ref.startswith("accepted/"):
                raise StoreError(
                    f"no baseline accepted as {ref!r} under {runs_root}; accept a run you trust "
                    f"with `harness accept RUN --runs {runs_root}` (e.g. "
                    f"`harness accept {current.run_id}`), or pass --baseline RUN"
                ) from None
            raise
    if current is not None:
        want, got = current.experiment().name, base.experiment().name
        if want != got:
            raise StoreError(
                f"baseline {base.run_id} is a run of experiment {got!r}, not {want!r}; "
                "regress a run against a baseline of the same experiment"
            )
    return base
