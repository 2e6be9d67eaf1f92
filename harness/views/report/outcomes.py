"""The report's per-prompt outcomes of a sweep: per level, the shares of prompts that moved
toward the concept, did not move and moved away (Wilson 95% CIs), a stacked-bar picture, the
prompts a study of the effect needs for 80% power, and a warning where the wrong-way share may
be large or n is too small (:mod:`harness.analysis.outcomes`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.analysis.outcomes import POWER, WRONG_WAY_LIMIT
from harness.views.report.effects import Conds, plot_name
from harness.views.report.markdown_table import cell, table

__all__ = ["outcomes_section"]

_SHARES = (("toward_share", "toward"), ("unmoved_share", "unmoved"), ("away_share", "away"))


def _share(row: dict[str, Any] | None) -> str:
    if row is None or not row["n"]:
        return "–"
    k = round(row["value"] * row["n"])
    return f"{row['value']:.0%} [{row['ci_low']:.0%}, {row['ci_high']:.0%}] ({k}/{row['n']})"


def _power(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    v = row["value"]
    if math.isnan(v):
        return "any (no spread)" if row["n"] >= 2 else "–"
    return "no effect" if math.isinf(v) else f"{int(v)}"


def outcomes_section(
    conds: Conds, target: list[str], plot_dir: Path | None, sae: str, study: str
) -> list[str]:
    """The section for the target conditions that have outcome rows; [] when none do."""
    shown = [c for c in target if "toward_share" in conds.get(c, {})]
    if not shown:
        return []
    lines = [
        "### Per-prompt outcomes",
        "",
        "Each prompt's concept score at the level against the same prompt unclamped: moved "
        "toward the concept, did not move, moved away; shares with Wilson 95% intervals. "
        f"'n for {POWER:.0%} power': prompts a two-sided paired test at α = 0.05 needs to "
        "detect the observed mean difference.",
        "",
        *table(
            ["condition", "toward", "unmoved", "away", f"n for {POWER:.0%} power"],
            [
                [
                    cell(c),
                    *(_share(conds[c].get(m)) for m, _ in _SHARES),
                    _power(conds[c].get("n_for_80pct_power")),
                ]
                for c in shown
            ],
        ),
        "",
    ]
    for c in shown:
        away = conds[c].get("away_share")
        if away is not None and away["n"] and away["ci_high"] > WRONG_WAY_LIMIT:
            lines += [
                f"**Warning:** at {cell(c)} up to {away['ci_high']:.0%} of prompts may move away "
                f"from the concept (away {_share(away)}, above the {WRONG_WAY_LIMIT:.0%} "
                "limit): the mean hides them.",
                "",
            ]
        power = conds[c].get("n_for_80pct_power")
        if power is not None and math.isfinite(power["value"]) and power["n"] < power["value"]:
            lines += [
                f"**Warning:** at {cell(c)} n = {power['n']} prompts is below the "
                f"{int(power['value'])} this effect size needs for {POWER:.0%} power: a rerun "
                "on other prompts may well miss it, and a null result here is no evidence of "
                "no effect.",
                "",
            ]
    if plot_dir is not None:
        name = plot_name(sae, study, "outcomes")
        _plot(conds, shown, plot_dir / name, f"{study} on {sae}")
        lines += [f"![per-prompt outcomes]({plot_dir.name}/{name})", ""]
    return lines


def _plot(conds: Conds, shown: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(shown) + 1.2))
    left = [0.0] * len(shown)
    colours = {"toward": "#2a9d8f", "unmoved": "#bbbbbb", "away": "#e76f51"}
    for metric, label in _SHARES:
        widths = [conds[c][metric]["value"] for c in shown]
        ax.barh(shown, widths, left=left, color=colours[label], label=label)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of prompts")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
