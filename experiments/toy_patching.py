"""Activation patching on the toy model: how much of "feels sad" vs "feels happy" the hook point
carries at the last positions, and how much the "sad" feature alone carries.

Pairs: "john says , i want to be alone right now . john feels" (source) and its happy twin
(target); metric logit(sad) − logit(happy). Patching the whole activation at blocks.1
.hook_resid_pre restores the difference position by position; patching only the "sad" feature
found by contrastive probing (error term kept) restores what that feature carries.
"""

from __future__ import annotations

from harness import Experiment, ToySAE
from harness.spec import ActivationPatching, LogitDiff
from harness.toy.probes import HAPPY_PROMPTS, SAD, SAD_PROMPTS

PAIRS = 12


def spec() -> Experiment:
    """Residual and feature patching on both toy SAEs."""
    metric = LogitDiff(positive="sad", negative="happy")
    return Experiment(
        name="toy_patching",
        description=__doc__.strip().splitlines()[0],
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        studies=(
            ActivationPatching(
                name="residual_patching",
                sources=SAD_PROMPTS[:PAIRS],
                targets=HAPPY_PROMPTS[:PAIRS],
                metric=metric,
                what="residual",
                positions=3,
            ),
            ActivationPatching(
                name="sad_feature_patching",
                sources=SAD_PROMPTS[:PAIRS],
                targets=HAPPY_PROMPTS[:PAIRS],
                metric=metric,
                what="features",
                features=(SAD,),
                rank_features=True,
            ),
        ),
    )
