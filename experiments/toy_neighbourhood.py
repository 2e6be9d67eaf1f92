"""The toy Golden Gate feature read through its decoder neighbourhood, on both toy SAEs.

For the feature found by contrastive probing: the 8 features of the same SAE whose decoder rows
are nearest to its own, and the 8 nearest in the other checkpoint, each with its firing
frequency, max activation, max-activating contexts, an offline description and the toy corpus
topic it fires on.
"""

from __future__ import annotations

from harness import Experiment, ToySAE
from harness.spec import FeatureNeighbourhood
from harness.toy.probes import GOLDEN_GATE


def spec() -> Experiment:
    """Neighbourhoods of the Golden Gate feature on both toy SAEs."""
    return Experiment(
        name="toy_neighbourhood",
        description=__doc__.strip().splitlines()[0],
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        studies=(FeatureNeighbourhood(name="golden_gate_neighbourhood", feature=GOLDEN_GATE),),
        sae_quality=None,
    )
