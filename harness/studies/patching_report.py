"""The report's feature ranking of a patching study: attribution, ablation and patching side by
side (:mod:`harness.studies.patching_rank_run` computes it)."""

from __future__ import annotations

from typing import Any

from harness.studies.contract import RunStore

__all__ = ["ranking_section"]

SHOWN = 10
LABELS = {
    "attribution": "attribution",
    "ablation": "ablation",
    "patching": "patching",
    "attribution_patching": "attribution patching",
}


def ranking_section(
    store: RunStore, sae: str, study: str, spearman: dict[str, dict[str, Any]]
) -> list[str]:
    """The top features by |patching effect| with their effect and rank under each method, and
    the Spearman correlation between each pair of methods."""
    import numpy as np

    from harness.views.report.markdown_table import fmt_row, table

    found = [r for r in store.records("patch_ranking") if r["sae"] == sae and r["study"] == study]
    if not found:
        return []
    rec = found[0]
    means = {m: np.array(v).mean(0) for m, v in rec["per_pair"].items()}
    ranks = {m: _ranks(v) for m, v in means.items()}
    order = np.argsort(-np.abs(means["patching"]), kind="stable")[:SHOWN]
    methods = [m for m in LABELS if m in means]
    body = [
        [str(rec["features"][j])] + [f"{means[m][j]:+.3f} (#{ranks[m][j]})" for m in methods]
        for j in order
    ]
    corr = [
        [name.removeprefix("spearman_").replace("_vs_", " vs ").replace("_", " "), fmt_row(row)]
        for name, row in spearman.items()
    ]
    n_pairs = len(next(iter(rec["per_pair"].values())))
    return [
        "### Features ranked three ways",
        "",
        f"Over {rec['how']} (chosen without looking at any method), at the target's last "
        f"position, error term kept, mean over {n_pairs} pairs: the metric's change when the "
        "feature alone takes the source's value (patching), when it is zeroed (ablation), and "
        "the linear estimates of both from one backward pass (attribution = ∂metric/∂f × (0 − f); "
        "attribution patching = ∂metric/∂f × (f_source − f)). Rank #1: the largest |effect|. "
        f"The {SHOWN} features patching moves most:",
        "",
        *table(["feature", *(LABELS[m] for m in methods)], body),
        "",
        "Spearman correlation of the methods' mean effects over the sample, with 95% bootstrap "
        "CIs over pairs:",
        "",
        *table(["methods", "Spearman"], corr),
        "",
    ]


def _ranks(values: Any) -> list[int]:
    """Rank of each entry by |value| (1: largest)."""
    import numpy as np

    order = np.argsort(-np.abs(values), kind="stable")
    ranks = [0] * len(order)
    for r, j in enumerate(order, start=1):
        ranks[int(j)] = r
    return ranks
