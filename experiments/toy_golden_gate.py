"""Golden-Gate-style saturation sweep, ablation and amplification on the toy world (no download).

The Golden Gate Bridge feature is not given by index: it is found per SAE by contrastive probing
(bridge contexts vs other topics). Three studies:

- a saturation sweep: the feature clamped to 0, 1, 2, 5 and 10 × its max activation while the
  model continues prompts about other topics; every level also runs on held-out control prompts
  (clamp specificity: how far the clamp moves text it should leave alone);
- a defence-style ablation: the two strongest bridge features zeroed on bridge contexts, with
  control prompts for side effects;
- an attack-style amplification: the same features clamped to 20 on the same prompts.

The offline judge scores bridge talk on the 0–3 concept-presence rubric (Claude with
ANTHROPIC_API_KEY set).
"""

from __future__ import annotations

from harness import Experiment, SaturationClamp, ToyModel, ToySAE
from harness.spec import Ablation
from harness.toy.probes import BRIDGE_PROMPTS, CONTROL_PROMPTS, GOLDEN_GATE, NEUTRAL_PROMPTS

BRIDGE_FEATURES = (GOLDEN_GATE, GOLDEN_GATE.model_copy(update={"rank": 1}))


def spec(levels: tuple[float, ...] = (0, 1, 2, 5, 10)) -> Experiment:
    """The demo experiment: sweep, ablation and amplification on the toy ReLU SAE."""
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
                neutral_prompts=CONTROL_PROMPTS,
            ),
            Ablation(
                name="golden_gate_ablation",
                features=BRIDGE_FEATURES,
                mode="zero",
                prompts=BRIDGE_PROMPTS,
                control_prompts=CONTROL_PROMPTS,
                tokens=("bridge", "golden"),
            ),
            Ablation(
                name="golden_gate_amplify",
                features=BRIDGE_FEATURES,
                mode="amplify",
                amplify_value=20.0,
                prompts=NEUTRAL_PROMPTS,
                control_prompts=CONTROL_PROMPTS,
                tokens=("bridge", "golden"),
            ),
        ),
        tags=("demo", "nightly"),
    )
