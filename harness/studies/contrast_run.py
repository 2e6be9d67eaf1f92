"""Running a contrastive search (the engine side of :mod:`harness.studies.contrast`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from harness.analysis.stats import contrast_interval
from harness.engine.features import contrastive_candidates, prompt_activations
from harness.spec.refs import FeatureByContrast, prompt_list
from harness.studies.contract import StudyContext
from harness.studies.contrast import ContrastiveSearch
from harness.studies.items import content_key
from harness.studies.specificity_run import feature_contexts, max_activating_examples

__all__ = ["run"]


@torch.no_grad()
def run(ctx: StudyContext, study: ContrastiveSearch, field: str) -> None:
    """Rank features by contrast; keep scores with bootstrap CIs and max-activating examples."""
    model, sae, store, seed = ctx.model, ctx.sae, ctx.store, ctx.experiment.seed
    docs = list(prompt_list(study.corpus)) if study.corpus else ctx.documents
    neuronpedia = ctx.neuronpedia
    key = content_key({"sae": sae.label, "study": study.name, "what": "candidates"})
    if key in store.done_keys("candidates"):
        return
    ref = FeatureByContrast(
        positive=prompt_list(study.positive),
        negative=prompt_list(study.negative),
        position=study.position,
    )
    pos = prompt_activations(model, sae, ref.positive, ref.position).cpu().numpy()
    neg = prompt_activations(model, sae, ref.negative, ref.position).cpu().numpy()
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for rank, cand in enumerate(contrastive_candidates(model, sae, ref, top=study.top_k), 1):
        values_pos = pos[:, cand.index].tolist()
        values_neg = neg[:, cand.index].tolist()
        low, high = contrast_interval(values_pos, values_neg, rng)
        examples = []
        if rank <= 3:
            contexts = feature_contexts(model, sae, docs, cand.index, window=6)
            examples = [
                {"text": c.text, "activation": c.activation}
                for c in max_activating_examples(contexts, 5)
            ]
        rows.append(
            {
                "rank": rank,
                "feature": cand.index,
                "score": cand.score,
                "ci_low": float(low),
                "ci_high": float(high),
                "n": len(pos) + len(neg),
                "mean_positive": cand.mean_positive,
                "mean_negative": cand.mean_negative,
                "values_positive": values_pos,  # per prompt: the CI can be recomputed
                "values_negative": values_neg,
                "examples": examples,
                "neuronpedia": f"https://www.neuronpedia.org/{neuronpedia}/{cand.index}"
                if neuronpedia
                else None,
            }
        )
    store.append(
        [
            {
                "kind": "candidates",
                "key": key,
                "sae": sae.label,
                "study": study.name,
                "candidates": rows,
            }
        ]
    )
