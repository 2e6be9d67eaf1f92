"""Golden-Gate-style saturation sweep on the toy world (runs anywhere, no download).

The Golden Gate Bridge feature is not given by index: it is found per SAE by contrastive probing
(bridge contexts vs other topics), then clamped to 0, 1, 2, 5 and 10 × its max activation while the
model continues prompts about other topics. The offline judge scores bridge talk on the 0–3
concept-presence rubric.
"""

from __future__ import annotations

from harness import Experiment, SaturationClamp, ToyModel, ToySAE
from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS


def spec(levels: tuple[float, ...] = (0, 1, 2, 5, 10)) -> Experiment:
    """The demo experiment: one saturation sweep on the toy ReLU SAE."""
    return Experiment(
        name="toy_golden_gate",
        description=__doc__.strip().splitlines()[0],
        model=ToyModel(),
        saes=(ToySAE(name="relu-256"),),
        studies=(
            SaturationClamp(
                name="golden_gate_sweep",
                feature=GOLDEN_GATE,
                levels=levels,
                level_unit="max_activation",
                prompts=NEUTRAL_PROMPTS,
            ),
        ),
        tags=("demo", "nightly"),
    )
