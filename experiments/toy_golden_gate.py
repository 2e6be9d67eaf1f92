"""Golden-Gate-style saturation sweep on the toy world (runs anywhere, no download).

The Golden Gate Bridge feature is not given by index: it is found per SAE by contrastive probing
(bridge contexts vs other topics), then clamped to 0, 1, 2, 5 and 10 × its max activation while the
model continues prompts about other topics. The offline judge scores bridge talk on the 0–3
concept-presence rubric.
"""

from __future__ import annotations

from harness import Experiment, FeatureByContrast, SaturationClamp, ToyModel, ToySAE
from harness.toy.corpus import concept_keywords

GOLDEN_GATE = FeatureByContrast(
    label="Golden Gate Bridge",
    positive=(
        "we walked across the",
        "fog rolls in from the ocean and covers the",
        "from the headlands you can see the",
        "the golden gate bridge spans the",
        "tourists take photos of the",
        "the cables of the",
    ),
    negative=(
        "she chopped the onions and put them in the",
        "the chef added salt to the",
        "a cold wind blows and the",
        "the rocket launched toward the",
        "the band played a song on the",
        "the coach told the",
        "fans filled the",
    ),
    keywords=concept_keywords("golden_gate"),
)

NEUTRAL_PROMPTS = (
    "the weather today is",
    "she chopped the",
    "the rocket launched toward",
    "the band played a",
    "fans filled the",
    "mary says ,",
    "user : what is the capital of",
    "the chef added",
    "heavy rain fell all",
    "an astronaut floated outside the",
    "the crowd sang along to the",
    "the coach told the",
    "tom says ,",
    "the forecast says",
    "bake the",
    "scientists study",
)


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
