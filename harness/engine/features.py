"""Finding features and measuring their activation range.

Contrastive probing ranks features by the mean difference of their activation between prompts
where a concept is present and prompts where it is absent; activation statistics over a corpus give
the "max activation" that clamp levels are multiples of (:mod:`harness.engine.feature_stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformer_lens import HookedTransformer

from harness.engine.backend import LoadedSAE
from harness.engine.tokens import real_tokens
from harness.errors import SpecError
from harness.spec import FeatureByContrast, FeatureByIndex, FeatureByMatch, FeatureRef

__all__ = [
    "Candidate",
    "contrastive_candidates",
    "prompt_activations",
    "resolve_feature",
]


@dataclass(frozen=True)
class Candidate:
    """A feature ranked by contrastive probing."""

    index: int
    score: float  # mean activation on positive prompts minus on negative prompts
    mean_positive: float
    mean_negative: float


@torch.no_grad()
def prompt_activations(
    model: HookedTransformer, sae: LoadedSAE, prompts: Sequence[str], position: str
) -> torch.Tensor:
    """Feature activations ``[n_prompts, d_sae]`` at the last token, or max over tokens."""
    tokens = model.to_tokens(list(prompts), padding_side="left")
    _, cache = model.run_with_cache(tokens, names_filter=sae.hook_name)
    acts = sae.encode(cache[sae.hook_name])
    if position == "last":
        # left padding: the last position is every prompt's last token
        last: torch.Tensor = acts[:, -1, :]
        return last
    real = real_tokens(model, tokens)
    peak: torch.Tensor = acts.masked_fill(~real[..., None], float("-inf")).max(dim=1).values
    return peak


def contrastive_candidates(
    model: HookedTransformer, sae: LoadedSAE, ref: FeatureByContrast, top: int = 10
) -> list[Candidate]:
    """Features ranked by mean activation difference (positive − negative), best first."""
    pos = prompt_activations(model, sae, ref.positive, ref.position)
    neg = prompt_activations(model, sae, ref.negative, ref.position)
    diff = pos.mean(0) - neg.mean(0)
    scores, idx = torch.topk(diff, k=min(top, diff.shape[0]))
    return [
        Candidate(
            index=int(i),
            score=float(s),
            mean_positive=float(pos[:, i].mean()),
            mean_negative=float(neg[:, i].mean()),
        )
        for s, i in zip(scores, idx, strict=True)
    ]


def match_by_decoder(
    reference: LoadedSAE, index: int, sae: LoadedSAE, top: int = 5
) -> list[Candidate]:
    """Features of ``sae`` ranked by decoder cosine to feature ``index`` of ``reference``."""
    target = reference.sae.W_dec[index].detach().float()
    dec = sae.sae.W_dec.detach().float()
    cos = (dec @ target) / (dec.norm(dim=-1) * target.norm() + 1e-12)
    scores, idx = torch.topk(cos, k=min(top, cos.shape[0]))
    return [
        Candidate(int(i), float(s), float("nan"), float("nan"))
        for s, i in zip(scores, idx, strict=True)
    ]


def resolve_feature(
    model: HookedTransformer,
    sae: LoadedSAE,
    ref: FeatureRef,
    field: str,
    others: dict[str, LoadedSAE] | None = None,
) -> tuple[int, list[Candidate]]:
    """The feature index a reference means for this SAE, and the candidates it was chosen from.

    ``others`` maps SAE labels to loaded SAEs, for references matched across checkpoints.
    """
    if isinstance(ref, FeatureByMatch):
        if others is None or ref.reference_sae not in others:
            raise SpecError(
                f"reference SAE {ref.reference_sae!r} is not loaded", field=f"{field}.reference_sae"
            )
        if ref.reference_sae == sae.label:
            return ref.reference_index, []
        candidates = match_by_decoder(others[ref.reference_sae], ref.reference_index, sae)
        return candidates[0].index, candidates
    if isinstance(ref, FeatureByIndex):
        if ref.index >= sae.d_sae:
            raise SpecError(
                f"feature index {ref.index} is out of range for SAE {sae.label!r} "
                f"(d_sae={sae.d_sae}; valid: 0..{sae.d_sae - 1})",
                field=f"{field}.index",
            )
        return ref.index, []
    candidates = contrastive_candidates(model, sae, ref, top=max(10, ref.rank + 1))
    return candidates[ref.rank].index, candidates
