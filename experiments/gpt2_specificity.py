"""A feature of GPT-2 small's residual stream: contrastive search and a specificity study.

Needs the Hugging Face hub (or a local cache) for GPT-2 small and the SAELens release
``gpt2-small-res-jb``; without it, `harness run` stops in seconds with one line saying so.
Contexts come from `data/bridges_and_more.txt`; replace it with a larger corpus for real numbers.
With ANTHROPIC_API_KEY set the judge is Claude; otherwise the offline keyword judge.
"""

from __future__ import annotations

from harness import Experiment, FeatureByContrast, PretrainedModel, PretrainedSAE
from harness.spec import ContrastiveSearch, HubDataset, PromptFile, Specificity

BRIDGE = FeatureByContrast(
    label="bridges (the Golden Gate Bridge in particular)",
    positive=(
        "The Golden Gate Bridge",
        "We drove across the bridge",
        "the suspension cables of the bridge",
        "fog around the towers of the Golden Gate",
    ),
    negative=(
        "The recipe calls for two onions",
        "The forecast promises a sunny week",
        "The striker scored twice",
        "The committee will meet on Tuesday",
    ),
    position="max",
    keywords=("bridge", "golden", "gate", "span", "suspension", "cables", "towers"),
)


def spec() -> Experiment:
    """Contrastive search and a specificity study on GPT-2 small, layer 3 residual stream."""
    corpus = PromptFile(path="data/bridges_and_more.txt")
    return Experiment(
        name="gpt2_specificity",
        description=__doc__.strip().splitlines()[0],
        model=PretrainedModel(name="gpt2"),
        saes=(PretrainedSAE(release="gpt2-small-res-jb", sae_id="blocks.3.hook_resid_pre"),),
        # SAE quality (explained variance, CE-loss score, ...) on the SAE's training distribution
        stats_corpus=HubDataset(path="NeelNanda/pile-10k", n_documents=200),
        studies=(
            ContrastiveSearch(
                name="bridge_search",
                positive=BRIDGE.positive,
                negative=BRIDGE.negative,
                position="max",
                top_k=10,
                corpus=corpus,
            ),
            Specificity(name="bridge_specificity", feature=BRIDGE, n_per_bin=5, corpus=corpus),
        ),
    )
