"""Finding the toy world's Golden Gate Bridge feature and measuring how specific it is.

Contrastive search ranks features on both shipped SAEs; the specificity study then samples
contexts from the held-out corpus in bins of the feature's activation (plus contexts where it does
not fire) and judges each on the 0–3 specificity rubric of Templeton et al. 2024.
"""

from __future__ import annotations

from harness import Experiment, ToySAE
from harness.spec import ContrastiveSearch, Specificity
from harness.toy.probes import GOLDEN_GATE


def spec(n_per_bin: int = 20) -> Experiment:
    """Contrastive search and a specificity study on both toy SAEs."""
    return Experiment(
        name="toy_specificity",
        description=__doc__.strip().splitlines()[0],
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        studies=(
            ContrastiveSearch(
                name="golden_gate_search",
                positive=GOLDEN_GATE.positive,
                negative=GOLDEN_GATE.negative,
                top_k=10,
            ),
            Specificity(
                name="golden_gate_specificity",
                feature=GOLDEN_GATE,
                bins=(0.0, 0.25, 0.5, 0.75),
                n_per_bin=n_per_bin,
                description="the Golden Gate Bridge in San Francisco (towers, cables, fog, bay)",
            ),
        ),
        tags=("nightly",),
    )
