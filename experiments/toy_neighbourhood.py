"""The toy Golden Gate feature read through its decoder neighbourhood, on the three toy SAEs.

For the feature found by contrastive probing: the 8 features of the same SAE whose decoder rows
are nearest to its own, and the 8 nearest in each other checkpoint, each with its firing
frequency, max activation, max-activating contexts, an offline description and the toy corpus
topic it fires on; and how the 1024-wide ReLU SAE splits it (the features of the wider SAE whose
nearest direction among the narrower SAE's is the studied feature's).
"""

from __future__ import annotations

from harness import Experiment, ToySAE
from harness.spec import FeatureNeighbourhood
from harness.toy.probes import GOLDEN_GATE


def spec() -> Experiment:
    """Neighbourhoods of the Golden Gate feature on the three toy SAEs."""
    return Experiment(
        name="toy_neighbourhood",
        description=__doc__.strip().splitlines()[0],
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256"), ToySAE(name="relu-1024")),
        studies=(FeatureNeighbourhood(name="golden_gate_neighbourhood", feature=GOLDEN_GATE),),
        sae_quality=None,
    )
