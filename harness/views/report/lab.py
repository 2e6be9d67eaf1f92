"""The ``--template lab`` report: the tables an SAE steering lab report asks for.

1. SAE quality; 2. top features per prompt (no intervention); 3. top-5 contrastive candidates with
scores; 4. defence tables (features zeroed: ablations in ``zero`` mode); 5. attack tables
(features amplified: ablations in ``amplify`` mode and saturation sweeps); 6. side effects on
control / neutral prompts. Rebuilt from the run store like the default report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from harness.store import RunStore
from harness.studies.controls import parse_control
from harness.studies.items import condition_order, split_condition
from harness.studies.registry import kind_of
from harness.views.report.effects import next_token_table
from harness.views.report.markdown_table import cell, fmt_estimate, fmt_row, table
from harness.views.report.quality import quality_section

__all__ = ["render_lab_report"]

Rows = dict[tuple[str, str, str], dict[str, dict[str, Any]]]  # (sae, study, cond) → metric → row


def render_lab_report(store: RunStore, summary: list[dict[str, Any]]) -> str:
    """The lab template as Markdown."""
    exp = store.experiment()
    prov = store.read_json("provenance.json")
    rows: Rows = defaultdict(dict)
    for r in summary:
        rows[(r["sae"], r["study"], r["condition"])][r["metric"]] = r
    chosen = {
        (f["sae"], f["study"]): set(f["features"]) for f in store.records_in_spec_order("feature")
    }
    lines = [
        f"# {cell(exp.name)}: lab report tables",
        "",
        f"Run {cell(store.run_id)} · spec hash `{exp.spec_hash()[:16]}` · model "
        f"{cell(exp.model.model_dump(mode='json', exclude_none=True))} · judge "
        f"{cell(prov.get('judge'))}, rubric {cell(prov.get('rubric'))} · git "
        f"{cell(str(prov.get('git_commit'))[:12])}. Full report: `harness report "
        f"{cell(store.run_id)}`.",
        "",
    ]
    lines += quality_section(store, summary)
    lines += _top_features(store, chosen)
    lines += _candidates(store)
    zeroed = [s for s in exp.studies if kind_of(s).lab_role_of(s) == "defence"]
    amplified = [s for s in exp.studies if kind_of(s).lab_role_of(s) == "attack"]
    # a clamp to 0 (0x, v=0) zeroes the feature: a defence, whichever study swept it
    zero = {s.name for s in zeroed}
    lines += _intervention_tables(
        store,
        rows,
        "Defence: features zeroed",
        lambda study, cond: (
            study in zero or (study in {s.name for s in amplified} and _at_zero(cond))
        ),
    )
    lines += _intervention_tables(
        store,
        rows,
        "Attack: features amplified or clamped",
        lambda study, cond: study in {s.name for s in amplified} and not _at_zero(cond),
    )
    lines += _side_effects(store, rows, [s.name for s in zeroed + amplified])
    return "\n".join(lines)


def _top_features(store: RunStore, chosen: dict[tuple[str, str], set[int]]) -> list[str]:
    records = list(store.records_in_spec_order("top_features"))
    if not records:
        return []
    lines = [
        "## Top features per prompt",
        "",
        "The most active features on each prompt without any intervention: largest activation "
        "over the prompt's tokens (BOS excluded) and the token where it peaks. In bold: a "
        "feature some study intervenes on.",
        "",
    ]
    by_sae: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for r in records:
        by_sae[r["sae"]].setdefault(r["prompt"], []).append(r)
    for sae, prompts in by_sae.items():
        mine = set().union(*(f for (s, _), f in chosen.items() if s == sae))
        body = []
        for prompt, recs in prompts.items():
            feats = [
                ("**{}**" if f["feature"] in mine else "{}").format(f["feature"])
                + f" {f['activation']:.2f} @ “{cell(f['token'], 20)}”"
                for f in recs[0]["features"]
            ]
            used = ", ".join(dict.fromkeys(f"{r['study']} ({r['prompt_set']})" for r in recs))
            body.append([cell(prompt, 80), cell(used), "; ".join(feats) or "–"])
        lines += [
            f"### {cell(sae)}",
            "",
            *table(["prompt", "used in (prompt set)", "top features (activation @ token)"], body),
            "",
        ]
    return lines


def _candidates(store: RunStore) -> list[str]:
    body = []
    for r in store.records_in_spec_order("candidates"):
        for c in r["candidates"][:5]:
            body.append(
                [
                    cell(r["study"]),
                    cell(r["sae"]),
                    str(c["rank"]),
                    str(c["feature"]),
                    fmt_estimate(c["score"], c["ci_low"], c["ci_high"], c["n"], 3),
                    f"{c['mean_positive']:.3f}",
                    f"{c['mean_negative']:.3f}",
                ]
            )
    # features chosen by contrast inside a study (the same probe in several studies: once)
    ranked: dict[tuple[str, tuple[int, ...]], list[dict[str, Any]]] = {}
    for f in store.records_in_spec_order("feature"):
        if f["method"] == "contrast" and f["candidates"]:
            key = (f["sae"], tuple(c["index"] for c in f["candidates"][:5]))
            ranked.setdefault(key, []).append(f)
    for (sae, _), feats in ranked.items():
        picked = set().union(*(set(f["features"]) for f in feats))
        studies = ", ".join(f["study"] for f in feats)
        for rank, c in enumerate(feats[0]["candidates"][:5], start=1):
            body.append(
                [
                    cell(studies),
                    cell(sae),
                    str(rank),
                    ("**{}**" if c["index"] in picked else "{}").format(c["index"]),
                    f"{c['score']:.3f}",
                    f"{c['mean_positive']:.3f}",
                    f"{c['mean_negative']:.3f}",
                ]
            )
    if not body:
        return []
    return [
        "## Contrastive candidates (top 5)",
        "",
        "Score: mean activation on positive prompts minus on negative prompts (with a 95% "
        "bootstrap CI over prompts for contrastive searches). In bold: the feature a study chose.",
        "",
        *table(["study", "SAE", "rank", "feature", "score", "mean +", "mean −"], body),
        "",
    ]


def _at_zero(condition: str) -> bool:
    """Whether a condition clamps to zero (``0x``, ``v=0``)."""
    _, numeric, level, _ = condition_order(condition)
    return numeric == 0 and level == 0.0


def _intervention_tables(
    store: RunStore, rows: Rows, title: str, keep: Callable[[str, str], bool]
) -> list[str]:
    records = [
        r
        for r in store.records_in_spec_order("next_token")
        if r["prompt_set"] == "target" and keep(r["study"], r["condition"])
    ]
    if not records:
        return []
    lines = [
        f"## {title}",
        "",
        "Per target prompt: the most likely next token without and with the intervention, "
        "whether it changed, the baseline top token's probability shift and the next-token KL.",
        "",
    ]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if parse_control(r["condition"]) is None:  # controls have their own table (full report)
            groups[(r["sae"], r["study"], r["condition"])].append(r)
    for (sae, study, cond), recs in groups.items():
        metrics = rows.get((sae, study, cond), {})
        changed = sum(bool(r["changed"]) for r in recs)
        shift = metrics.get("metric_shift")
        lines += [
            f"### {cell(study)} on {cell(sae)}: {cell(cond)}",
            "",
            f"Top token changed on {changed} of {len(recs)} prompts"
            + (f"; metric shift {fmt_row(shift)}" if shift else "")
            + (
                f"; concept score {fmt_row(metrics.get('concept_score'))}"
                if "concept_score" in metrics
                else ""
            )
            + ".",
            "",
            *next_token_table(recs),
            "",
        ]
    return lines


def _side_effects(store: RunStore, rows: Rows, studies: list[str]) -> list[str]:
    body = []
    for (sae, study, cond), metrics in rows.items():
        prompt_set, intervention = split_condition(cond)
        if study not in studies or prompt_set == "target" or intervention == "baseline":
            continue
        body.append(
            [
                cell(study),
                cell(sae),
                cell(prompt_set),
                cell(intervention),
                fmt_row(metrics.get("top1_changed")),
                fmt_row(metrics.get("kl_mean")),
                fmt_row(metrics.get("drift")),
                fmt_row(metrics.get("concept_score")),
            ]
        )
    if not body:
        return []
    return [
        "## Side effects on control prompts",
        "",
        "The same interventions on prompts they should leave alone (control prompts of "
        "ablations, neutral prompts of sweeps): share of prompts whose top next token changed, "
        "mean next-token KL over the prompt, topic drift of the continuation (1 − cosine to the "
        "unintervened continuation) and its judged concept score.",
        "",
        *table(
            [
                "study",
                "SAE",
                "prompts",
                "intervention",
                "top token changed",
                "KL",
                "drift",
                "concept score",
            ],
            body,
        ),
        "",
    ]
