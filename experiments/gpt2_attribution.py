"""Attribution vs ablation on GPT-2 small: which layer-3 SAE features make it say " sad".

Needs the Hugging Face hub (or a local cache) for GPT-2 small and the SAELens release
``gpt2-small-res-jb``; without it, `harness run` stops in seconds with one line saying so.
"""

from __future__ import annotations

from harness import Experiment, PretrainedModel, PretrainedSAE
from harness.spec import Attribution, HubDataset, LogitDiff


def spec() -> Experiment:
    """The Scaling Monosemanticity "John feels" prompts, logit(" sad") − logit(" happy")."""
    return Experiment(
        name="gpt2_attribution",
        description=__doc__.strip().splitlines()[0],
        model=PretrainedModel(name="gpt2"),
        saes=(PretrainedSAE(release="gpt2-small-res-jb", sae_id="blocks.3.hook_resid_pre"),),
        # SAE quality (explained variance, CE-loss score, ...) on the SAE's training distribution
        stats_corpus=HubDataset(path="NeelNanda/pile-10k", n_documents=200),
        studies=(
            Attribution(
                name="sad_vs_happy",
                prompts=(
                    "John says, I want to be alone right now. John feels",
                    "Mary says, I lost my best friend. Mary feels",
                    "Tom says, nobody came to my party. Tom feels",
                    "Sarah says, everything went wrong today. Sarah feels",
                ),
                metric=LogitDiff(positive=" sad", negative=" happy"),
                top_k=20,
            ),
        ),
    )
