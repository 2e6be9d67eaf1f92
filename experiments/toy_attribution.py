"""Which toy features make the model say "sad" rather than "happy" (Templeton et al. 2024).

"john says , i want to be alone right now . john feels" → logit(sad) − logit(happy). Attribution
(gradient × activation, error term held fixed) ranks the features in one backward pass; the top 20
are then ablated one by one to measure their true effect, and the two are compared. Finally the
"sad" feature found by contrastive probing (sad vs happy lines, at the "feels" token) is zeroed:
logit(sad) − logit(happy) should fall, and the happy prompts are the controls.
"""

from __future__ import annotations

from harness import Experiment, ToySAE
from harness.spec import Ablation, Attribution, LogitDiff
from harness.toy.probes import HAPPY_PROMPTS, SAD, SAD_PROMPTS


def spec() -> Experiment:
    """Attribution vs ablation, and the sad feature's ablation, on both toy SAEs."""
    return Experiment(
        name="toy_attribution",
        description=__doc__.strip().splitlines()[0],
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        studies=(
            Attribution(
                name="sad_vs_happy",
                prompts=SAD_PROMPTS,
                metric=LogitDiff(positive="sad", negative="happy"),
                top_k=20,
            ),
            Ablation(
                name="sad_feature_ablation",
                features=(SAD,),
                mode="zero",
                prompts=SAD_PROMPTS,
                control_prompts=HAPPY_PROMPTS,
                tokens=("sad", "happy"),
                metric=LogitDiff(positive="sad", negative="happy"),
            ),
        ),
    )
