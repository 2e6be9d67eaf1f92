"""Report sections for finding features: contrastive candidates and specificity per bin."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from harness.studies.contract import RunStore
from harness.views.report.markdown_table import cell, fmt_estimate, table

__all__ = ["attribution_section", "contrast_section", "specificity_section"]


def contrast_section(
    store: RunStore, sae: str, study: str, conds: dict[str, dict[str, dict[str, Any]]]
) -> list[str]:
    """Ranked candidates with bootstrap CIs, how firmly the first is first, max-activating
    examples and Neuronpedia links."""
    found = [r for r in store.records("candidates") if r["sae"] == sae and r["study"] == study]
    if not found:
        return []
    rows = found[0]["candidates"]
    lines = [
        f"## {cell(study)} on {cell(sae)}: contrastive candidates",
        "",
        "Score: mean activation on positive prompts minus on negative prompts, with a 95% "
        "bootstrap CI over prompts.",
        "",
        *table(
            ["rank", "feature", "score", "mean +", "mean −", "link"],
            [
                [
                    str(r["rank"]),
                    str(r["feature"]),
                    fmt_estimate(r["score"], r["ci_low"], r["ci_high"], r["n"]),
                    f"{r['mean_positive']:.3f}",
                    f"{r['mean_negative']:.3f}",
                    f"[neuronpedia]({r['neuronpedia']})" if r["neuronpedia"] else "–",
                ]
                for r in rows
            ],
        ),
        "",
        *_stability(rows, conds),
    ]
    for r in rows:
        if r["examples"]:
            lines += [f"Max-activating examples of feature {r['feature']}:", ""]
            examples = [
                [f"{e['activation']:.3f}", cell(_mark(e["text"]), 200)] for e in r["examples"]
            ]
            lines += [*table(["activation", "context (token where it fires in ⟦ ⟧)"], examples), ""]
    return lines


STABLE = 0.9  # share of resamples below which the first candidate is called unstable


def _stability(
    rows: list[dict[str, Any]], conds: dict[str, dict[str, dict[str, Any]]]
) -> list[str]:
    """The first candidate's margin over the second and its rank stability, with a warning."""
    got = conds.get(f"feature {rows[0]['feature']}", {}) if rows else {}
    margin, stable = got.get("margin_over_second"), got.get("rank_stability")
    if margin is None or stable is None:
        return []
    share = stable["value"]
    text = (
        f"Feature {rows[0]['feature']} leads feature {rows[1]['feature']} by "
        f"{fmt_estimate(margin['value'], margin['ci_low'], margin['ci_high'], margin['n'])} "
        f"and stays first in {share:.0%} of bootstrap resamples of the prompts (among the "
        "listed candidates)."
    )
    if share < STABLE or margin["ci_low"] <= 0:
        text += (
            f" **Unstable choice**: with these {margin['n']} prompts another candidate is "
            "often first; add probe prompts before relying on this feature."
        )
    return [text, ""]


def _mark(text: str) -> str:
    return re.sub(r"<<(.+?)>>", r"⟦\1⟧", text)


def specificity_section(
    store: RunStore,
    sae: str,
    study: str,
    rows: dict[str, dict[str, dict[str, Any]]],
    plot_dir: Path | None,
) -> list[str]:
    """Per bin: score distribution, mean with CI, share of 3s; a stacked-bar plot."""
    contexts = [c for c in store.records("context") if c["sae"] == sae and c["study"] == study]
    if not contexts:
        return []
    by_key = {c["key"]: c for c in contexts}
    dist: dict[str, Counter[str]] = {cond: Counter() for cond in rows}
    for j in store.judgements("*"):
        if j["of"] in by_key and j["rubric"].startswith("specificity@"):
            dist.setdefault(j["condition"], Counter())[
                "unscored" if j["score"] is None else str(j["score"])
            ] += 1
    first = contexts[0]
    lines = [
        f"## {cell(study)} on {cell(sae)}: specificity",
        "",
        f"Feature **{first['feature']}**, described as “{cell(first['description'], 300)}”; "
        f"max activation {first['max_activation']:.3f} on the held-out corpus. Contexts sampled "
        "per bin of activation (fractions of the max) and judged on the 0–3 specificity rubric "
        "(Templeton et al. 2024) by "
        f"`{cell(next((j['judge'] for j in store.judgements('*') if j['of'] in by_key), '–'))}`.",
        "",
        *table(
            ["bin", "0", "1", "2", "3", "unscored", "mean score", "share of 3s"],
            [
                [
                    cell(cond),
                    *(str(dist[cond][k]) for k in ("0", "1", "2", "3", "unscored")),
                    fmt_estimate(
                        m["specificity_score"]["value"],
                        m["specificity_score"]["ci_low"],
                        m["specificity_score"]["ci_high"],
                        m["specificity_score"]["n"],
                    ),
                    fmt_estimate(
                        m["share_of_3s"]["value"],
                        m["share_of_3s"]["ci_low"],
                        m["share_of_3s"]["ci_high"],
                        m["share_of_3s"]["n"],
                    ),
                ]
                for cond, m in rows.items()
            ],
        ),
        "",
    ]
    if plot_dir is not None:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{sae}-{study}") + ".png"
        _stacked_bars(dist, plot_dir / name, f"{study} on {sae}")
        lines += [f"![specificity per bin]({plot_dir.name}/{name})", ""]
    return lines


def _stacked_bars(dist: dict[str, Counter[str]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    bins = list(dist)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bottom = [0.0] * len(bins)
    colours = {"0": "#d9d9d9", "1": "#fdd49e", "2": "#fc8d59", "3": "#b30000"}
    for score, colour in colours.items():
        totals = [sum(dist[b][k] for k in colours) or 1 for b in bins]
        share = [dist[b][score] / t for b, t in zip(bins, totals, strict=True)]
        ax.bar(bins, share, bottom=bottom, color=colour, label=f"score {score}")
        bottom = [b + s for b, s in zip(bottom, share, strict=True)]
    ax.set_ylabel("share of scored contexts")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    scored = [sum(dist[b][k] for k in colours) for b in bins]
    ax.set_xticks(range(len(bins)), [f"{b}\n(n={n})" for b, n in zip(bins, scored, strict=True)])
    plt.setp(ax.get_xticklabels(), rotation=15, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def attribution_section(
    store: RunStore,
    sae: str,
    study: str,
    plot_dir: Path | None,
    conds: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> list[str]:
    """Agreement statistics, the top features, and a scatter of attribution vs ablation."""
    found = [r for r in store.records("attribution") if r["sae"] == sae and r["study"] == study]
    if not found:
        return []
    rec = found[0]
    agreement = rec["agreement"]
    lines = [
        f"## {cell(study)} on {cell(sae)}: attribution vs ablation",
        "",
        f"Metric on the unablated model: {rec['metric_baseline']:.3f} (mean over "
        f"{rec['n_prompts']} prompts). Attribution = ∂metric/∂f × (0 − f) with the SAE error term "
        "held fixed, summed over positions; ablation = the exact change when the feature is set "
        f"to 0 at every position. Agreement over the top {len(rec['features'])} features by "
        "|attribution|, with 95% bootstrap CIs over prompts:",
        "",
        *table(
            ["statistic", "value"],
            [
                [name, fmt_estimate(e["value"], e["ci_low"], e["ci_high"], e["n"])]
                for name, e in agreement.items()
            ],
        ),
        "",
        *table(
            ["rank", "feature", "attribution", "ablation effect"],
            [
                [str(i), str(f["feature"]), f"{f['attribution']:.3f}", f"{f['ablation']:.3f}"]
                for i, f in enumerate(rec["features"], start=1)
            ],
        ),
        "",
    ]
    lines += _independent(rec, conds or {})
    if rec.get("by_position"):
        lines += [
            "Top features by |attribution| at each of the last prompt positions (mean over "
            "prompts; position −1 is the last token):",
            "",
            *table(
                ["position", "features (attribution)"],
                [
                    [str(p["position"]), ", ".join(f"{i} ({v:+.3f})" for i, v in p["features"])]
                    for p in rec["by_position"]
                ],
            ),
            "",
        ]
    if plot_dir is not None:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{sae}-{study}") + ".png"
        _scatter(rec["features"], plot_dir / name, f"{study} on {sae}")
        lines += [f"![attribution vs ablation]({plot_dir.name}/{name})", ""]
    return lines


def _independent(rec: dict[str, Any], conds: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Attribution on features chosen without it (the table above ranks only what attribution
    itself put first, so a feature it misses could never show there); from the summary rows."""
    sample = rec.get("sample")
    if not sample:
        return []
    got = conds.get(f"sample{len(sample['features'])}", {})
    if not got:
        return []
    names = {f"recall_at_{k}": f"recall of the true top {k}" for k in (5, 20)}
    rows = [
        [names.get(m, m), fmt_estimate(r["value"], r["ci_low"], r["ci_high"], r["n"])]
        for m, r in got.items()
    ]
    return [
        f"On features chosen independently of attribution ({cell(sample['how'])}), each ablated "
        "exactly: how many of the true strongest (by |ablation effect|) attribution's own top "
        "finds, and the agreement over the whole sample (95% bootstrap CIs over prompts):",
        "",
        *table(["statistic", "value"], rows),
        "",
    ]


def _scatter(features: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    xs = [f["attribution"] for f in features]
    ys = [f["ablation"] for f in features]
    lo, hi = min(xs + ys), max(xs + ys)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1, label="y = x")
    ax.scatter(xs, ys, color="#b30000")
    for f in features[:5]:
        ax.annotate(str(f["feature"]), (f["attribution"], f["ablation"]), fontsize=8)
    ax.set_xlabel("attribution (linear estimate)")
    ax.set_ylabel("ablation effect (exact)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
