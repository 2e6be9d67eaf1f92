"""Controls of a saturation sweep (on by default; ``controls=()`` opts out).

A steered number means little alone: a random feature or a random direction of the same size may
move the text just as far, and simply asking for the concept may beat steering (AxBench). At every
non-zero level, on the target prompts, the sweep also generates with

- ``random_feature``: another feature of the same SAE whose max activation is closest to the
  studied feature's (``control_draws`` seeded draws among the 20 closest), clamped to the same
  multiple of *its* max activation;
- ``random_direction``: a seeded random direction scaled to the studied feature's decoder norm,
  added with the level's value (what a clamp from zero adds);
- ``wrong_sign``: the studied feature at minus the level's value;

and once per prompt ``prompt_only``: the unsteered model given an instruction to talk about the
concept (``control_instruction``) before the prompt. ``additive`` is no control but the other way
practitioners steer: the level's value added along the feature's decoder row instead of clamping
the feature to it (a clamping sweep only), row by row on the same prompts. Summary rows, paired
by prompt, with bootstrap CIs: ``concept_vs_<control>`` (the feature's concept score minus the
control's; random features averaged over draws) and ``drift_vs_<control>`` per level.
"""

from __future__ import annotations

from typing import Any

from harness.spec.refs import prompt_list
from harness.studies.items import WorkItem, condition_name, content_key, make_item

__all__ = [
    "CONTROLS",
    "ablation_control_items",
    "ablation_control_rows",
    "ablation_controls_section",
    "control_conditions",
    "control_items",
    "control_rows",
    "controls_section",
    "drift_table",
    "parse_control",
    "sweep_controls",
    "sweep_pairs",
    "verdict",
]

CONTROLS = ("random_feature", "random_direction", "wrong_sign", "prompt_only", "additive")
PROMPT_ONLY = "prompt_only"


def parse_control(condition: str) -> tuple[str, int | None, str | None] | None:
    """``random_feature#2@10x`` → (control, draw, level condition); ``prompt_only`` → (control,
    None, None); a condition that is no control → None."""
    if condition == PROMPT_ONLY:
        return PROMPT_ONLY, None, None
    head, sep, level = condition.partition("@")
    if not sep:
        return None
    name, _, draw = head.partition("#")
    if name not in CONTROLS:
        return None
    return name, (int(draw) if draw else None), level


REAL_INSTRUCTION = "Talk about {concept}. "
TOY_INSTRUCTION = "tell me something on {concept} . "  # in the toy world's words


def instruction(study: Any, concept: str, toy: bool) -> str:
    """The prompt-only baseline's prefix for ``concept`` (the spec's ``control_instruction``,
    else the default for the model: the toy tokenizer knows only its corpus's words)."""
    template = study.control_instruction or (TOY_INSTRUCTION if toy else REAL_INSTRUCTION)
    return str(template).format(concept=concept)


def sweep_controls(study: Any) -> list[str]:
    """The controls a sweep runs (additive steering only beside a clamping sweep)."""
    return [c for c in study.controls if c != "additive" or study.intervention == "clamp"]


def control_items(
    sae: str, study: Any, identity: dict[str, Any], concept: str | None, toy: bool
) -> list[WorkItem]:
    """The control generations of one sweep on one SAE (target prompts only)."""
    items = []
    levels = [lv for lv in study.levels if lv > 0]
    for i, prompt in enumerate(prompt_list(study.prompts)):
        for level in levels:
            name = condition_name(level, study.level_unit)
            for control in sweep_controls(study):
                if control == PROMPT_ONLY:
                    continue
                draws = range(study.control_draws) if control == "random_feature" else [None]
                for d in draws:
                    cond = f"{control}#{d + 1}@{name}" if d is not None else f"{control}@{name}"
                    key = content_key(
                        {
                            **identity,
                            "prompt": prompt,
                            "level": level,
                            "control": control,
                            "draw": d,
                        }
                    )
                    items.append(make_item(key, sae, study.name, "target", cond, level, i, prompt))
        if PROMPT_ONLY in study.controls and concept:
            text = instruction(study, concept, toy) + prompt
            key = content_key({**identity, "prompt": text, "control": PROMPT_ONLY})
            items.append(make_item(key, sae, study.name, "target", PROMPT_ONLY, None, i, text))
    return items


def ablation_control_items(
    sae: str, study: Any, identity: dict[str, Any], cond: str, value: float
) -> list[WorkItem]:
    """An ablation's controls: the same intervention on random features of matched max
    activation (one per studied feature, ``control_draws`` draws), on the target prompts."""
    items: list[WorkItem] = []
    if "random_feature" not in study.controls:
        return items
    for i, prompt in enumerate(prompt_list(study.prompts)):
        for d in range(study.control_draws):
            what = {"prompt": prompt, "control": "random_feature", "draw": d}
            items.append(
                make_item(
                    content_key({**identity, **what}),
                    sae,
                    study.name,
                    "target",
                    f"random_feature#{d + 1}@{cond}",
                    value,
                    i,
                    prompt,
                )
            )
    return items


Table = dict[tuple[str, str, str], dict[int, Any]]  # (sae, study, condition) → prompt → value


def drift_table(store: Any, study: str) -> Table:
    """(sae, study, condition) → prompt index → drift, from the study's measure records."""
    out: Table = {}
    for m in store.records("measure"):
        if m["study"] == study:
            out.setdefault((m["sae"], m["study"], m["condition"]), {})[m["prompt_index"]] = m[
                "drift"
            ]
    return out


def _per_prompt(table: Table, sae: str, study: str, conditions: list[str]) -> dict[int, float]:
    """Per prompt, the mean over ``conditions`` (the draws of a random feature)."""
    sums: dict[int, list[float]] = {}
    for cond in conditions:
        for i, v in table.get((sae, study, cond), {}).items():
            if v is not None:
                sums.setdefault(i, []).append(float(v))
    return {i: sum(v) / len(v) for i, v in sums.items()}


Pair = tuple[str, str, list[str]]  # (the feature's condition, control, the control's conditions)


def sweep_pairs(study: Any) -> list[Pair]:
    """A sweep's comparisons: every non-zero level against each control."""
    pairs = []
    for level in (lv for lv in study.levels if lv > 0):
        cond = condition_name(level, study.level_unit)
        for control in sweep_controls(study):
            pairs.append((cond, control, control_conditions(study, control, cond)))
    return pairs


def control_conditions(study: Any, control: str, cond: str) -> list[str]:
    """The stored conditions of ``control`` for the feature's condition ``cond``."""
    if control == PROMPT_ONLY:
        return [PROMPT_ONLY]
    if control == "random_feature":
        return [f"{control}#{d + 1}@{cond}" for d in range(study.control_draws)]
    return [f"{control}@{cond}"]


def control_rows(
    sae: str, study: str, pairs: list[Pair], tables: dict[str, Table], rng: Any
) -> list[dict[str, Any]]:
    """Per comparison and measure: the feature minus the control, paired by prompt (a random
    feature's draws averaged per prompt), with a bootstrap CI."""
    from harness.analysis.rows import estimate_row
    from harness.analysis.stats import paired_difference

    rows = []
    for cond, control, conds in pairs:
        for metric, table in tables.items():
            mine = _per_prompt(table, sae, study, [cond])
            theirs = _per_prompt(table, sae, study, conds)
            both = sorted(set(mine) & set(theirs))
            if len(both) < 2:
                continue
            test = paired_difference(
                [theirs[i] for i in both], [mine[i] for i in both], rng, method="signflip"
            )
            group = (sae, study, cond)
            rows.append(estimate_row(group, f"{metric}_vs_{control}", test.mean_difference))
    return rows


def verdict(row: dict[str, Any], sign: int = 1) -> str:
    """'beats it' when the CI of ``sign`` × Δ is above 0, 'loses to it' when below."""
    low, high = sorted((sign * row["ci_low"], sign * row["ci_high"]))
    return "beats it" if low > 0 else "loses to it" if high < 0 else "inconclusive"


def controls_section(study: Any, rows: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """A sweep's controls table from the summary rows (condition → metric → row)."""
    from harness.views.report.markdown_table import cell, fmt_row, table

    body = []
    for cond, control, _ in sweep_pairs(study):
        c = rows.get(cond, {}).get(f"concept_vs_{control}")
        d = rows.get(cond, {}).get(f"drift_vs_{control}")
        if c is not None:
            body.append([cell(cond), cell(control), fmt_row(c), verdict(c), fmt_row(d)])
    if not body:
        return []
    return [
        "### Controls (target prompts)",
        "",
        *_at_recommended(study, rows),
        "The feature at each level against controls on the same prompts: a random feature of "
        "matched max activation (clamped to the same multiple of its own max; averaged over "
        f"{study.control_draws} seeded draws), a random direction of the feature's decoder norm "
        "(added with the level's value), the wrong sign, and the unsteered model asked to talk "
        "about the concept (prompt-only); and additive steering with the level's value along the "
        "decoder row, the way Neuronpedia and Goodfire steer (additive). Δ: the clamped "
        "feature's mean minus the other's, paired by prompt, with a 95% bootstrap CI; 'beats it' "
        "when the concept CI is above 0.",
        "",
        *table(
            ["level", "control", "Δ concept score", "verdict", "Δ drift"],
            body,
        ),
        "",
    ]


def _at_recommended(study: Any, rows: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """One sentence: how the feature fares against its controls at the recommended level."""
    import math

    from harness.views.report.markdown_table import fmt_row

    level = rows.get("recommended", {}).get("level", {}).get("value")
    if level is None or (isinstance(level, float) and math.isnan(level)):
        return []
    cond = condition_name(float(level), study.level_unit)
    beats: list[str] = []
    fails: list[str] = []
    for control in sweep_controls(study):
        if control == "additive":
            continue  # a comparison of two ways to steer, not a control
        row = rows.get(cond, {}).get(f"concept_vs_{control}")
        if row is None:
            continue
        (beats if row["ci_low"] > 0 else fails).append(f"{control} (Δ {fmt_row(row)})")
    if not beats and not fails:
        return []
    text = f"At the recommended level ({cond}) the feature's concept score "
    text += f"beats {', '.join(beats)}" if beats else "beats no control"
    text += f"; it does not beat {', '.join(fails)}." if fails else "."
    prompt = rows.get(cond, {}).get(f"concept_vs_{PROMPT_ONLY}")
    if prompt is not None and prompt["ci_high"] < 0:
        text += " Asking the model for the concept (prompt-only) scores higher than steering."
    added = rows.get(cond, {}).get("concept_vs_additive")
    if added is not None:
        word = {"beats it": "scores higher than", "loses to it": "scores lower than"}.get(
            verdict(added), "does not differ measurably from"
        )
        text += (
            f" Clamping to the level {word} adding the same value along the decoder row "
            f"(Δ {fmt_row(added)}; the two differ only where the feature already fires)."
        )
    return [text, ""]


def ablation_control_rows(rc: Any, study: Any, cond: str, concept: Table) -> list[dict[str, Any]]:
    """An ablation against its random-feature controls, per SAE: concept score and drift of
    the continuations, logit shifts of the named tokens and KL of the next token."""
    tables: dict[str, Table] = {
        "concept": concept,
        "drift": drift_table(rc.store, study.name),
        "kl_mean": {},
    }
    for r in rc.store.records("next_token"):
        if r["study"] != study.name:
            continue
        group = (r["sae"], r["study"], r["condition"])
        tables["kl_mean"].setdefault(group, {})[r["prompt_index"]] = r["kl_mean"]
        for word, shift in r["logit_shift"].items():
            tables.setdefault(f"logit_shift[{word}]", {}).setdefault(group, {})[
                r["prompt_index"]
            ] = shift
    pairs = [(cond, "random_feature", control_conditions(study, "random_feature", cond))]
    saes = dict.fromkeys(g[0] for t in tables.values() for g in t if g[1] == study.name)
    rows = []
    for sae in saes:
        rows += control_rows(sae, study.name, pairs, tables, rc.rng)
    return rows


def ablation_controls_section(
    study: Any, cond: str, rows: dict[str, dict[str, dict[str, Any]]]
) -> list[str]:
    """An ablation's controls table: each measure, the feature(s) minus random features."""
    from harness.views.report.markdown_table import cell, fmt_row, table

    got = {
        m.removesuffix("_vs_random_feature"): r
        for m, r in rows.get(cond, {}).items()
        if m.endswith("_vs_random_feature")
    }
    if not got:
        return []
    # what the intervention is for: zeroing should lower the concept and its tokens' logits,
    # amplifying raise them
    sign = -1 if study.mode == "zero" else 1
    body = []
    for metric, row in got.items():
        aimed = metric == "concept" or metric.startswith("logit_shift")
        body.append([cell(metric), fmt_row(row), verdict(row, sign) if aimed else ""])
    direction = "lower" if sign < 0 else "raise"
    return [
        "### Controls (target prompts)",
        "",
        f"The intervention ({cell(cond)}) against the same intervention on random features of "
        "matched max activation (one per studied feature; averaged over "
        f"{study.control_draws} seeded draws). Δ: the studied features' mean minus the "
        "random features', paired by prompt, with a 95% bootstrap CI; 'beats it' when the "
        f"studied features {direction} the concept score or the named tokens' logits more "
        "(CI excluding 0).",
        "",
        *table(["measure", "Δ (studied − random)", "verdict"], body),
        "",
    ]
