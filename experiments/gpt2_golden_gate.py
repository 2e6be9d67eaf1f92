"""Golden-Gate-style saturation sweep on GPT-2 small (needs the hub or a local cache).

The bridge feature of ``gpt2-small-res-jb`` / ``blocks.3.hook_resid_pre`` is found by contrastive
probing and clamped to 0, 1, 5, 10 and 50 × its max activation, measured over the documents in
experiments/data/bridges_and_more.txt (use a larger corpus, e.g.
``HubDataset(path="NeelNanda/pile-10k")``, for publication numbers). Control prompts measure
the clamp's side effects.
"""

from __future__ import annotations

from gpt2_specificity import BRIDGE  # a sibling spec: load_spec puts its folder on sys.path

from harness import Experiment, PretrainedModel, PretrainedSAE, SaturationClamp
from harness.spec import GenerationSettings, PromptFile

PROMPTS = (
    "My favourite place to visit is",
    "Yesterday I went for a walk and",
    "The most important thing in life is",
    "When I think about the future,",
    "Here is a short story:",
    "The best way to spend a weekend is",
    "I asked my friend what she thought about",
    "In the news today,",
)
CONTROL = (
    "The recipe calls for two cups of",
    "The striker scored in the",
    "The committee will meet on",
    "The forecast for tomorrow is",
)


def spec() -> Experiment:
    """Saturation sweep of the bridge feature with control prompts."""
    return Experiment(
        name="gpt2_golden_gate",
        description=__doc__.strip().splitlines()[0],
        model=PretrainedModel(name="gpt2"),
        saes=(PretrainedSAE(release="gpt2-small-res-jb", sae_id="blocks.3.hook_resid_pre"),),
        stats_corpus=PromptFile(path="data/bridges_and_more.txt"),
        generation=GenerationSettings(max_new_tokens=32),
        studies=(
            SaturationClamp(
                name="bridge_sweep",
                feature=BRIDGE,
                levels=(0, 1, 5, 10, 50),
                level_unit="max_activation",
                prompts=PROMPTS,
                neutral_prompts=CONTROL,
            ),
        ),
    )
