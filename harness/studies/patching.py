"""Activation patching: how much of a metric's difference between two prompts one piece of the
activation carries.

Each pair is a source prompt (e.g. "john says , i want to be alone right now . john feels") and
a target prompt (its happy twin). The target is run again with a piece of the source's
activation at the SAE's hook point patched in: the whole activation (``what="residual"``) at one
of the last positions, or only selected SAE features (``what="features"``, the error term kept),
together and one at a time, at the last position. Headline per patch: the fraction of the
metric's source − target difference it restores, ``(patched − target) / (source − target)``,
with a bootstrap CI over prompt pairs (pairs whose difference is below ``min_difference`` are
left out and counted).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.spec.refs import (
    FeatureRef,
    Metric,
    Prompts,
    PromptSet,
    StudySpec,
    prompt_list,
)
from harness.store.records import Record
from harness.studies.contract import (
    Conds,
    Cost,
    Experiment,
    Headline,
    RowContext,
    RunStore,
    StudyKind,
    in_spec_order,
    prompts_of,
)

__all__ = ["KIND", "ActivationPatching", "PatchRanking", "PatchRecord", "patch_names"]


class ActivationPatching(StudySpec):
    """Patch the source prompt's activation (or selected SAE features) into the target prompt."""

    kind: Literal["patching"] = "patching"
    sources: Prompts
    targets: Prompts = Field(description="Paired with sources by position.")
    metric: Metric
    what: Literal["residual", "features"] = "residual"
    features: tuple[FeatureRef, ...] = Field(
        default=(), description='what="features": the features patched (together and each alone).'
    )
    positions: int = Field(
        default=3,
        ge=1,
        le=64,
        description='what="residual": patch each of the last N positions (and all N together).',
    )
    rank_features: bool = Field(
        default=False,
        description="Also rank SAE features by the difference each carries, three ways "
        "(attribution, ablation, patching; plus attribution patching), on a sample chosen "
        "without any of them, with Spearman between each pair (harness/studies/"
        "patching_rank_run.py).",
    )
    rank_sample: int = Field(
        default=256, ge=10, le=4096, description="rank_features: features in the sample"
    )
    min_difference: float = Field(
        default=0.1,
        gt=0,
        description="Pairs whose source − target metric difference is smaller are not used for "
        "the fraction restored (it would divide by noise); the report counts them.",
    )

    @model_validator(mode="after")
    def _pairs(self) -> ActivationPatching:
        if not isinstance(self.sources, tuple) or not isinstance(self.targets, tuple):
            return self  # prompt files: checked once they are read
        if len(self.sources) != len(self.targets):
            raise ValueError(
                f"targets has {len(self.targets)} prompts but sources has {len(self.sources)}; "
                "they are paired by position"
            )
        if self.what == "features" and not self.features:
            raise ValueError('what="features" needs features=(...) to patch')
        return self


class PatchRecord(Record):
    """One patch of one prompt pair."""

    kind: Literal["patch"] = "patch"
    sae: str
    study: str
    condition: str  # the patch: "residual@-1", "residual@last3", "features", "feature 131"
    prompt_index: int  # the pair
    metric_source: float
    metric_target: float
    metric_patched: float
    restored: float | None  # None: |source − target| below min_difference


def patch_names(study: ActivationPatching, features: list[int]) -> list[str]:
    """The patches a study makes, in order (features: their indices on this SAE)."""
    if study.what == "residual":
        return [f"residual@-{k}" for k in range(1, study.positions + 1)] + [
            f"residual@last{study.positions}"
        ]
    alone = [f"feature {f}" for f in features] if len(features) > 1 else []
    return ["features", *alone]


def _patch_rank(condition: str) -> tuple[int, int]:
    """Where a patch comes in :func:`patch_names`' order."""
    head, _, tail = condition.partition("@")
    if head == "residual":
        return (0, int(tail[1:]) if tail.startswith("-") else 1 << 30)
    return (0, -1) if condition == "features" else (1, int(condition.split()[-1]))


class PatchRanking(Record):
    """Per pair and feature of a sample: the metric's change under patching, ablation, and the
    attribution estimates of both, at the target's last position."""

    kind: Literal["patch_ranking"] = "patch_ranking"
    sae: str
    study: str
    features: list[int]
    how: str
    per_pair: dict[str, list[list[float]]]


RANK_PAIRS = (
    ("attribution", "ablation"),
    ("attribution", "patching"),
    ("ablation", "patching"),
    ("attribution_patching", "patching"),
)


def _ranking_rows(rc: RowContext, study: str) -> list[dict[str, Any]]:
    """Spearman (and the other agreement statistics) between each pair of methods over the
    sample's features, with bootstrap CIs over prompt pairs."""
    import numpy as np

    from harness.analysis.rows import estimate_row
    from harness.analysis.stats import agreement

    rows = []
    for rec in in_spec_order(rc.store, rc.store.records("patch_ranking")):
        if rec["study"] != study:
            continue
        per = {m: np.array(v) for m, v in rec["per_pair"].items()}
        group = (rec["sae"], study, "ranking")
        for a, b in RANK_PAIRS:
            rng = np.random.default_rng([rc.seed, 23])
            est = agreement(per[a], per[b], rng)["spearman"]
            rows.append(estimate_row(group, f"spearman_{a}_vs_{b}", est))
    return rows


class PatchingKind(StudyKind[ActivationPatching]):
    """Activation patching."""

    kind = "patching"
    spec = ActivationPatching
    engine = "harness.studies.patching_run"
    records = (PatchRecord, PatchRanking)
    metrics = (Headline("fraction_restored", True),)

    def features(self, study: ActivationPatching) -> list[tuple[str, FeatureRef]]:
        return [(f"features.{j}", ref) for j, ref in enumerate(study.features)]

    def prompt_sets(self, study: ActivationPatching) -> list[tuple[str, PromptSet]]:
        return prompts_of(study, "sources", "targets")

    def cost(self, exp: Experiment, study: ActivationPatching, batch_size: int) -> Cost:
        pairs = len(prompt_list(study.sources))
        n = len(study.features)
        patches = study.positions + 1 if study.what == "residual" else 1 + (n if n > 1 else 0)
        return Cost(patches, pairs, 0, pairs * (2 + patches), 0)

    def rows(self, rc: RowContext, study: ActivationPatching) -> list[dict[str, Any]]:
        """Per SAE and patch: the fraction restored and the metric shift, CIs over pairs."""
        import numpy as np

        from harness.analysis.rows import estimate_row, summary_row
        from harness.analysis.stats import bootstrap_mean

        rng = np.random.default_rng([rc.seed, 7])
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for r in in_spec_order(rc.store, rc.store.records("patch")):
            if r["study"] == study.name:
                groups.setdefault((r["sae"], r["study"], r["condition"]), []).append(r)
        rows = []
        saes = {g[0]: i for i, g in reversed(list(enumerate(groups)))}  # spec order
        for group, recs in sorted(
            groups.items(), key=lambda kv: (saes[kv[0][0]], _patch_rank(kv[0][2]))
        ):
            recs.sort(key=lambda r: r["prompt_index"])
            used = [r["restored"] for r in recs if r["restored"] is not None]
            rows.append(estimate_row(group, "fraction_restored", bootstrap_mean(used, rng)))
            shift = [r["metric_patched"] - r["metric_target"] for r in recs]
            rows.append(estimate_row(group, "metric_shift", bootstrap_mean(shift, rng)))
            skipped = float(len(recs) - len(used))
            rows.append(summary_row(group, "pairs_skipped", skipped, skipped, skipped, len(recs)))
        return rows + _ranking_rows(rc, study.name)

    def section(
        self,
        store: RunStore,
        sae: str,
        study: ActivationPatching,
        conds: Conds,
        plot_dir: Path | None,
    ) -> list[str]:
        from harness.studies.patching_report import ranking_section
        from harness.views.report.markdown_table import cell, fmt_row, table

        ranking = conds.get("ranking", {})
        conds = {c: m for c, m in conds.items() if c != "ranking"}
        if not conds:
            return []
        recs = [r for r in store.records("patch") if r["sae"] == sae and r["study"] == study.name]
        gap = [r["metric_source"] - r["metric_target"] for r in recs if r["condition"] in conds]
        mean_gap = sum(gap) / len(gap) if gap else math.nan
        piece = (
            "the whole hook activation"
            if study.what == "residual"
            else "the listed SAE features, error term kept"
        )
        rows = [
            [
                cell(cond),
                fmt_row(m.get("fraction_restored")),
                fmt_row(m.get("metric_shift")),
                str(int(m["pairs_skipped"]["value"])) if "pairs_skipped" in m else "–",
            ]
            for cond, m in conds.items()
        ]
        return [
            f"## {cell(study.name)} on {cell(sae)}: activation patching",
            "",
            f"Each pair's source activation ({piece}) "
            "patched into its target prompt. Fraction restored: (patched − target) / (source − "
            f"target) of the metric, mean over pairs with a 95% bootstrap CI; the mean source − "
            f"target difference is {mean_gap:.3f}. Metric shift: patched − target. Pairs whose "
            f"difference is below {study.min_difference:g} are skipped (counted).",
            "",
            *table(["patch", "fraction restored", "metric shift", "pairs skipped"], rows),
            "",
            *ranking_section(store, sae, study.name, ranking),
        ]

    def item_values(self, run: Any, study: ActivationPatching, metric: str) -> dict[Any, float]:
        from harness.spec.refs import sae_label

        position = {sae_label(ref): i for i, ref in enumerate(run.experiment.saes)}
        if "kind" not in run.records:
            return {}
        recs = run.records[run.records["kind"] == "patch"].to_dict("records")
        return {
            (
                position[r["sae"]],
                r["study"],
                r["condition"],
                "target",
                int(r["prompt_index"]),
            ): float(r["restored"])
            for r in recs
            if r["study"] == study.name
            and r["restored"] is not None
            and r["restored"] == r["restored"]
        }


KIND = PatchingKind()
