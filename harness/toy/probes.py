"""Known probes of the toy world: contrast pairs for its planted features and neutral prompts.

Experiments and checks import these rather than hard-coding feature indices, which differ
between SAE checkpoints.
"""

from __future__ import annotations

from harness.spec import FeatureByContrast
from harness.toy.corpus import concept_keywords

__all__ = ["GOLDEN_GATE", "NEUTRAL_PROMPTS"]

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
