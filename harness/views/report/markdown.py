"""Render a run as a Markdown lab report: provenance, one section per SAE × study, the judge.

Everything is rebuilt from the run store; generated text goes through :func:`cell` so that pipes,
newlines, backticks or HTML in model output cannot break a table.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.spec import sae_label
from harness.store import RunStore
from harness.studies.registry import kind_of
from harness.views.report.markdown_table import cell, fmt_estimate, table
from harness.views.report.quality import quality_section

__all__ = ["cell", "fmt_estimate", "render_report", "write_report"]


def render_report(
    store: RunStore, summary: list[dict[str, Any]], plot_dir: Path | None = None
) -> str:
    """The whole report as Markdown text; plots (if any) are written into ``plot_dir``, which
    must sit next to the report file (the Markdown links to it by its name)."""
    exp = store.experiment()
    prov = store.read_json("provenance.json")
    packages = ", ".join(f"{k} {v}" for k, v in prov.get("packages", {}).items())
    lines = [f"# {cell(exp.name)}", ""]
    if torn := store.torn_tail():
        lines += [
            f"> **Incomplete records:** `records.jsonl` ends in a torn line ({torn} bytes cut "
            "mid-write); one record is missing from this report. Run the spec again to redo it.",
            "",
        ]
    if exp.limit is not None:
        lines += [
            f"> **Partial run** (`harness run --limit {exp.limit}`): every prompt set was cut to "
            f"its first {exp.limit} prompt(s); figures here are not the whole spec's.",
            "",
        ]
    if exp.description:
        lines += [cell(exp.description, 2000), ""]
    lines += [
        "## Provenance",
        "",
        *table(
            ["item", "value"],
            [
                ["run", cell(store.run_id)],
                ["spec hash", f"`{exp.spec_hash()[:16]}`"],
                ["git commit", cell(f"{prov.get('git_commit')} (dirty: {prov.get('git_dirty')})")],
                ["model", cell(exp.model.model_dump(mode="json"))],
                ["device", cell(prov.get("device"))],
                *_threads_rows(prov),
                *_loading_rows(prov),
                ["judge", cell(prov.get("judge"))],
                ["rubric", cell(prov.get("rubric"))],
                ["packages", cell(packages, 400)],
            ],
        ),
        "",
    ]
    lines += quality_section(store, summary, plot_dir)
    by_group: dict[tuple[str, str], dict[str, dict[str, dict[str, Any]]]] = defaultdict(dict)
    for row in summary:
        cond = by_group[(row["sae"], row["study"])].setdefault(row["condition"], {})
        cond[row["metric"]] = row
    for sae in [sae_label(ref) for ref in exp.saes]:
        for study in exp.studies:
            conds = by_group.get((sae, study.name), {})
            lines += kind_of(study).section(store, sae, study, conds, plot_dir)
    lines += _judge_section(store, prov)
    return "\n".join(lines)


def _loading_rows(prov: dict[str, Any]) -> list[list[str]]:
    """How a real model was loaded (the rule, why, dtype, memory estimate) and the fit gate."""
    rows = [["dtype", cell(prov["dtype"])]] if "dtype" in prov else []
    loading = prov.get("model_loading")
    if loading:
        rule = loading["rule"]
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(rule["kwargs"].items()))
        mem = loading["memory"]
        free = mem.get("free_bytes")
        how = f"HookedTransformer.{rule['method']}({args}) — {rule['reason']}"
        where = f"{free / 2**30:.1f} GiB free ({mem['free_source']})" if free else "free unknown"
        rows += [
            ["model loading", cell(how)],
            ["prepend_bos", cell(loading.get("prepend_bos"))],
            [
                "memory estimate",
                cell(f"{mem['needed_bytes'] / 2**30:.2f} GiB needed on {mem['device']}, {where}"),
            ],
        ]
        for label, meta in loading.get("saes", {}).items():
            rows.append([f"SAE {cell(label)} trained with", cell(meta, 600)])
    return rows


def _judge_section(store: RunStore, prov: dict[str, Any]) -> list[str]:
    from harness.analysis.aggregate import judge_totals
    from harness.judge.base import NATURAL_TEXT_MEASURED as MEASURED

    t = judge_totals(store)
    active = list(store.judgements("*"))
    lines = [
        "## Judge",
        "",
        *table(
            [
                "judge",
                "rubrics",
                "judgements",
                "scored",
                "unscored",
                "from cache",
                "API calls",
                "tokens in / out",
                "cost (USD)",
            ],
            [
                [
                    cell(prov.get("judge")),
                    cell(", ".join(sorted({j["rubric"].split("@")[0] for j in active}))),
                    str(t["judgements"]),
                    str(t["scored"]),
                    str(t["unscored"]),
                    str(t["cached"]),
                    str(t["api_calls"]),
                    f"{t['input_tokens']} / {t['output_tokens']}",
                    f"{t['cost_usd']:.4f}",
                ]
            ],
        ),
        "",
    ]
    per_rubric: dict[str, list[int]] = {}
    for j in active:
        counts = per_rubric.setdefault(j["rubric"], [0, 0])
        counts[0 if j["score"] is not None else 1] += 1
    if per_rubric:
        lines += [
            "Rubric versions (name@version#hash of the rubric text):",
            "",
            *table(
                ["rubric", "scored", "unscored"],
                [[cell(r), str(c[0]), str(c[1])] for r, c in sorted(per_rubric.items())],
            ),
            "",
        ]
    judge = str(prov.get("judge", ""))
    labelled = any(j["judge"].startswith("human:") for j in store.records("judgement"))
    real = getattr(store.experiment().model, "kind", "toy") != "toy"
    if judge in MEASURED and real and not labelled:
        recall, fp = MEASURED[judge]
        lines += [
            f"> **The offline judge is not validated on this model's text.** Its thresholds are "
            f"the toy world's; on natural sentences it was not calibrated on "
            f"(`harness bench offline-judge`, docs/judges.md) it scored {recall:.0%} of "
            f"on-concept sentences ≥ 2 and {fp:.0%} of near misses ≥ 2. `compare` and "
            "`regress` call no concept-score difference better or worse on it; label a sample "
            "(`harness label`) or judge with the Anthropic judge.",
            "",
        ]
    lines += _agreement_section(store)
    if t["unscored_reasons"]:
        lines += [
            "Unscored judgements are excluded from every mean above (never counted as 0):",
            "",
            *table(
                ["reason", "count"],
                [[cell(r), str(n)] for r, n in sorted(t["unscored_reasons"].items())],
            ),
            "",
        ]
    return lines


def _agreement_section(store: RunStore) -> list[str]:
    """Agreement between every two judges (or rubric versions) that scored the same items."""
    import numpy as np

    from harness.analysis.judge_agreement import MIN_ITEMS, item_texts, judge_agreement
    from harness.views.report.judge_humans import human_section, model_pairs

    texts = item_texts(store)
    judgements = list(store.records("judgement"))
    pairs = model_pairs(judge_agreement(judgements, np.random.default_rng(0), texts=texts))
    if not pairs:
        return human_section(store)
    related = sorted({a.related for a in pairs if a.related})
    return [
        "### Judge agreement",
        "",
        f"Items scored by both judges (at least {MIN_ITEMS}), identical texts (the same prompt "
        "and continuation) counted once: n is distinct texts, of all the items both scored. 95% "
        "bootstrap CIs over them. κ is Cohen's (chance-corrected exact agreement); 'κ, either "
        "> 0' is κ on the informative items alone (where either judge scores above 0; two judges "
        "both giving 0 agree trivially); weighted κ counts a disagreement by the square of its "
        "distance on the scale; ρ is Spearman's rank correlation.",
        "",
        *table(
            [
                "rubric",
                "judge A",
                "judge B",
                "items",
                "exact agreement",
                "κ",
                "κ, either > 0",
                "weighted κ",
                "Spearman ρ",
            ],
            [
                [
                    cell(a.rubric),
                    cell(a.first),
                    cell(a.second),
                    f"{a.kappa.n} distinct of {a.n_items}",
                    *(
                        fmt_estimate(e.value, e.ci_low, e.ci_high, e.n)
                        for e in (a.exact, a.kappa, a.informative_kappa, a.weighted_kappa)
                    ),
                    fmt_estimate(
                        a.spearman.value, a.spearman.ci_low, a.spearman.ci_high, a.spearman.n
                    ),
                ]
                for a in pairs
            ],
        ),
        "",
        *(
            [
                f"Not independent raters: {'; '.join(related)} (its score is never below the "
                "other's), so their agreement is consistency, not evidence that either is right; "
                "human labels (`harness label`) are.",
                "",
            ]
            if related
            else []
        ),
        *human_section(store),
    ]


def _threads_rows(prov: dict[str, Any]) -> list[list[str]]:
    """torch's CPU threads in the session that computed, when it computed anything."""
    threads = prov.get("threads")
    if not isinstance(threads, dict):
        return []
    return [["threads", cell(f"{threads.get('n')} ({threads.get('reason')})")]]


def write_report(
    store: RunStore, summary: list[dict[str, Any]], reports_dir: Path, template: str = "full"
) -> Path:
    """Write ``<reports_dir>/<run id>.md`` (plots in ``<run id>-files/``), or with
    ``template="lab"`` the lab-report tables to ``<run id>-lab.md``; returns its path."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    if template == "lab":
        from harness.views.report.lab import render_lab_report

        path = reports_dir / f"{store.run_id}-lab.md"
        path.write_text(render_lab_report(store, summary))
        return path
    path = reports_dir / f"{store.run_id}.md"
    path.write_text(render_report(store, summary, reports_dir / f"{store.run_id}-files"))
    return path
