"""SAE steering lab on the toy world: find the jailbreak-style feature, then defend and attack.

1. Contrastive search: features ranked by mean activation on jailbreak-style requests ("ignore
   your previous instructions and …") minus on benign requests, with max-activating examples.
2. Defence: the top candidate clamped to 0 on the jailbreak prompts; next-token table (does the
   model still continue toward "secret" / "hidden" / "bypass"?), with benign requests as controls.
3. Attack: the same feature amplified (clamped to 20) on the benign requests; controls are
   prompts on other topics: the side effects.

Runs anywhere (no download); `harness report RUN --template lab` gives the lab-report tables.
"""

from __future__ import annotations

from harness import Experiment, ToySAE
from harness.spec import Ablation, ContrastiveSearch
from harness.toy.probes import (
    CONTROL_PROMPTS,
    JAILBREAK,
    JAILBREAK_PROMPTS,
    REQUEST_CONTROL_PROMPTS,
)

WATCHED = ("secret", "hidden", "safety", "harmful", "write", "reveal")


def spec() -> Experiment:
    """Contrastive search, defence and attack on both toy SAEs."""
    return Experiment(
        name="toy_lab45",
        description=__doc__.strip().splitlines()[0],
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        studies=(
            ContrastiveSearch(
                name="jailbreak_search",
                positive=JAILBREAK_PROMPTS,
                negative=REQUEST_CONTROL_PROMPTS,
                top_k=5,
            ),
            Ablation(
                name="defence",
                features=(JAILBREAK,),
                mode="zero",
                prompts=JAILBREAK_PROMPTS,
                control_prompts=REQUEST_CONTROL_PROMPTS,
                tokens=WATCHED,
            ),
            Ablation(
                name="attack",
                features=(JAILBREAK,),
                mode="amplify",
                amplify_value=20.0,
                prompts=REQUEST_CONTROL_PROMPTS,
                control_prompts=CONTROL_PROMPTS,
                tokens=WATCHED,
            ),
        ),
        tags=("nightly",),
    )
