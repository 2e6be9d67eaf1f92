"""Feature neighbourhoods: a feature read through the decoder directions nearest to its own.

For the studied feature on each SAE: the features of the same SAE whose decoder rows have the
highest cosine with its row, and the nearest in every other SAE of the experiment (other
checkpoints of the same hook), each with its firing frequency and max activation over the
corpus, its max-activating contexts and an offline description (the most frequent tokens it
fires on); on the toy world also the corpus topic those tokens belong to, so that "the
neighbours are about the same thing" is checked against the corpus, not by eye
(``same_topic_share``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.spec.refs import FeatureRef, Prompts, StudySpec
from harness.store.records import Record
from harness.studies.contract import (
    Conds,
    Cost,
    Experiment,
    RowContext,
    RunStore,
    StudyKind,
    in_spec_order,
)

__all__ = ["KIND", "FeatureNeighbourhood", "NeighbourhoodRecord"]


class FeatureNeighbourhood(StudySpec):
    """The nearest decoder directions to a feature, within its SAE and in the others."""

    kind: Literal["neighbourhood"] = "neighbourhood"
    feature: FeatureRef
    neighbours: int = Field(default=8, ge=1, le=100, description="nearest features per SAE")
    examples: int = Field(default=5, ge=1, le=50, description="max-activating contexts each")
    context_window: int = Field(default=6, ge=1, le=64)
    split_cosine: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="splitting: a feature of a wider SAE is a child of the studied feature when "
        "its decoder row is nearest to the studied feature's among this SAE's, at least this close",
    )
    corpus: Prompts | None = Field(
        default=None, description="documents for the contexts (default: the run's documents)"
    )


class NeighbourhoodRecord(Record):
    """One SAE's neighbourhood of the studied feature (the feature itself first)."""

    kind: Literal["neighbourhood"] = "neighbourhood"
    sae: str
    study: str
    feature: int
    tokens: int  # corpus tokens the frequencies and contexts come from
    neighbours: list[dict[str, Any]]
    splits: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)  # wider SAE → children
    # SAE → {"features": scanned, "of": d_sae, "topics": topic → features}: the base rate
    background: dict[str, dict[str, Any]] = Field(default_factory=dict)


def _enrichment(
    group: tuple[str, str, str],
    background: dict[str, Any] | None,
    own: dict[str, Any],
    hits: int,
    near: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The base rate of the feature's topic among the SAE's features (all, or a sample) and a
    one-sided hypergeometric p-value: are ``hits`` of ``near`` on that topic more than features
    drawn at random would be? (Neighbours are drawn without replacement from the features.)"""
    from scipy.stats import hypergeom

    from harness.analysis.rows import summary_row

    if not background:
        return []
    total = int(background["features"])
    same = int(background["topics"].get(own["topic"], 0))
    same -= int(near[0]["sae"] == own["sae"])  # the studied feature itself is not a neighbour
    total -= int(near[0]["sae"] == own["sae"])
    rate = same / max(total, 1)
    p = float(hypergeom.sf(hits - 1, total, same, len(near)))
    return [
        summary_row(group, "topic_base_rate", rate, rate, rate, total),
        summary_row(group, "same_topic_p", p, p, p, len(near)),
    ]


def _overlap(token_sets: list[list[str]]) -> float:
    """Mean Jaccard overlap of the children's top tokens, over every pair (1: the same tokens;
    0: their contexts share none)."""
    pairs = [(set(a), set(b)) for i, a in enumerate(token_sets) for b in token_sets[i + 1 :]]
    return sum(len(a & b) / max(len(a | b), 1) for a, b in pairs) / len(pairs)


class NeighbourhoodKind(StudyKind[FeatureNeighbourhood]):
    """Feature neighbourhoods."""

    kind = "neighbourhood"
    spec = FeatureNeighbourhood
    engine = "harness.studies.neighbourhood_run"
    records = (NeighbourhoodRecord,)

    def features(self, study: FeatureNeighbourhood) -> list[tuple[str, FeatureRef]]:
        return [("feature", study.feature)]

    def cost(self, exp: Experiment, study: FeatureNeighbourhood, batch_size: int) -> Cost:
        return Cost(1 + max(0, len(exp.saes) - 1), 0, 0, 1, 0)

    def rows(self, rc: RowContext, study: FeatureNeighbourhood) -> list[dict[str, Any]]:
        """Per SAE and neighbour set: the mean decoder cosine and, on the toy world, the share of
        neighbours whose contexts are about the feature's own topic."""
        from harness.analysis.rows import summary_row

        rows = []
        for rec in in_spec_order(rc.store, rc.store.records("neighbourhood")):
            if rec["study"] != study.name:
                continue
            own = rec["neighbours"][0]
            for where in dict.fromkeys(n["sae"] for n in rec["neighbours"][1:]):
                near = [n for n in rec["neighbours"][1:] if n["sae"] == where]
                group = (rec["sae"], study.name, "within" if where == rec["sae"] else where)
                cos = [n["cosine"] for n in near]
                rows.append(summary_row(group, "top_cosine", max(cos), max(cos), max(cos), 1))
                if own.get("topic") is not None:
                    hits = sum(n.get("topic") == own["topic"] for n in near)
                    same = hits / len(near)
                    rows.append(summary_row(group, "same_topic_share", same, same, same, len(near)))
                    rows += _enrichment(
                        group, rec.get("background", {}).get(where), own, hits, near
                    )
            for wider, children in rec.get("splits", {}).items():
                group = (rec["sae"], study.name, f"split in {wider}")
                n = float(len(children))
                rows.append(summary_row(group, "children", n, n, n, len(children)))
                if len(children) >= 2:
                    overlap = _overlap([c["top_tokens"] for c in children])
                    rows.append(
                        summary_row(
                            group, "top_token_overlap", overlap, overlap, overlap, len(children)
                        )
                    )
        return rows

    def section(
        self,
        store: RunStore,
        sae: str,
        study: FeatureNeighbourhood,
        conds: Conds,
        plot_dir: Path | None,
    ) -> list[str]:
        from harness.views.report.markdown_table import cell, table

        found = [
            r
            for r in store.records("neighbourhood")
            if r["sae"] == sae and r["study"] == study.name
        ]
        if not found:
            return []
        rec = found[0]
        body = [
            [
                cell(n["sae"]),
                str(n["feature"]),
                "–" if n["cosine"] is None else f"{n['cosine']:.3f}",
                f"{n['frequency']:.2%}",
                f"{n['max_activation']:.3f}",
                cell(n.get("topic") or "–"),
                cell(n["description"]),
                cell(n["examples"][0]["text"] if n["examples"] else "–", 120),
            ]
            for n in rec["neighbours"]
        ]
        shares = [
            f"{cond}: {m['same_topic_share']['value']:.0%} of {m['same_topic_share']['n']}"
            + (
                f" vs {m['topic_base_rate']['value']:.0%} of all {m['topic_base_rate']['n']} "
                f"features (one-sided hypergeometric p = {m['same_topic_p']['value']:.2g})"
                if "topic_base_rate" in m
                else ""
            )
            for cond, m in conds.items()
            if "same_topic_share" in m
        ]
        return [
            f"## {cell(study.name)} on {cell(sae)}: neighbourhood of feature {rec['feature']}",
            "",
            "The features whose decoder rows are nearest (cosine) to the studied feature's, in "
            "this SAE and in the experiment's other SAEs; frequency and max activation over "
            f"{rec['tokens']} corpus tokens; description: the tokens it fires on most "
            "(offline); topic: the toy corpus topic its max-activating contexts belong to (each "
            "context votes by its words). The first row is "
            "the feature itself."
            + (f" Neighbours on the feature's own topic: {', '.join(shares)}." if shares else ""),
            "",
            *table(
                [
                    "SAE",
                    "feature",
                    "cosine",
                    "fires on",
                    "max",
                    "topic",
                    "description",
                    "top context",
                ],
                body,
            ),
            "",
            *_splits(rec, study, conds),
        ]


def _splits(rec: dict[str, Any], study: FeatureNeighbourhood, conds: Conds) -> list[str]:
    """Per wider SAE: the features that split the studied one, and how their contexts divide."""
    from harness.views.report.markdown_table import cell, table

    lines: list[str] = []
    for wider, children in rec.get("splits", {}).items():
        overlap = conds.get(f"split in {wider}", {}).get("top_token_overlap")
        lines += [
            f"### Splitting in {cell(wider)}",
            "",
            f"Features of {cell(wider)} whose decoder row is nearest to feature {rec['feature']}'s "
            f"among this SAE's, with cosine ≥ {study.split_cosine:g}: {len(children)}."
            + (
                f" Their top tokens overlap by {overlap['value']:.0%} on average (Jaccard over "
                "pairs; low: the contexts divide between them)."
                if overlap
                else ""
            ),
            "",
        ]
        if children:
            lines += [
                *table(
                    ["feature", "cosine", "fires on", "topic", "description", "top context"],
                    [
                        [
                            str(c["feature"]),
                            f"{c['cosine']:.3f}",
                            f"{c['frequency']:.2%}",
                            cell(c.get("topic") or "–"),
                            cell(c["description"]),
                            cell(c["examples"][0]["text"] if c["examples"] else "–", 120),
                        ]
                        for c in children
                    ],
                ),
                "",
            ]
    return lines


KIND = NeighbourhoodKind()
