"""Which toy features make the model say "sad" rather than "happy" (Templeton et al. 2024).

"john says , i want to be alone right now . john feels" → logit(sad) − logit(happy). Attribution
(gradient × activation, error term held fixed) ranks the features in one backward pass; the top 20
are then ablated one by one to measure their true effect, and the two are compared.
"""

from __future__ import annotations

from harness import Experiment, ToySAE
from harness.spec import Attribution, LogitDiff

SAD_PROMPTS = tuple(
    f"{name} says , {line} . {name} feels"
    for name in ("john", "mary", "tom", "sarah")
    for line in (
        "i want to be alone right now",
        "i lost my best friend",
        "nobody came to my party",
        "i miss my old home",
        "everything went wrong today",
    )
)


def spec() -> Experiment:
    """Attribution vs ablation on both toy SAEs."""
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
        ),
    )
