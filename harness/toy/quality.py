"""Measure the shipped toy world's planted Golden Gate feature (SAE quality: engine.sae_quality).

``harness toy check`` prints these figures; the README quotes them and the tests hold them.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformer_lens import HookedTransformer

from harness.engine.backend import LoadedSAE
from harness.engine.feature_stats import activation_stats
from harness.engine.features import contrastive_candidates
from harness.engine.generation import ClampTarget, GenRow, generate_rows
from harness.spec import FeatureByContrast
from harness.toy.corpus import words

__all__ = ["SteeringCheck", "steering_check"]


@dataclass(frozen=True)
class SteeringCheck:
    """Whether clamping the contrastively found feature steers neutral prompts to the concept."""

    sae: str
    feature: int
    max_activation: float
    level: float
    baseline_mention_rate: float
    clamped_mention_rate: float
    n_prompts: int


def steering_check(
    model: HookedTransformer,
    sae: LoadedSAE,
    ref: FeatureByContrast,
    prompts: list[str],
    documents: list[str],
    level: float = 10.0,
    max_new_tokens: int = 20,
) -> SteeringCheck:
    """Find the feature by contrast, clamp it to ``level`` × max activation on ``prompts``."""
    feature = contrastive_candidates(model, sae, ref)[0].index
    max_act = float(activation_stats(model, sae, documents, "toy").max[feature])
    rows = [GenRow(p) for p in prompts] + [GenRow(p, (level * max_act,)) for p in prompts]
    texts = generate_rows(
        model, rows, ClampTarget(sae.sae, sae.hook_name, (feature,)), max_new_tokens=max_new_tokens
    )
    keywords = set(ref.keywords)

    def rate(batch: list[str]) -> float:
        return sum(any(w in keywords for w in words(t)) for t in batch) / len(batch)

    return SteeringCheck(
        sae=sae.label,
        feature=feature,
        max_activation=max_act,
        level=level,
        baseline_mention_rate=rate(texts[: len(prompts)]),
        clamped_mention_rate=rate(texts[len(prompts) :]),
        n_prompts=len(prompts),
    )
