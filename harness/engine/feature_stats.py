"""Per-feature activation statistics over a corpus: max, firing frequency and quantiles.

Clamp levels given as "k × max activation" are multiples of the max found here. One pass over
the corpus computes every feature's statistics at once; the result is cached on disk per (model,
SAE weights, hook, corpus content), so the next run of any spec on the same trio loads it in
milliseconds. Quantiles are read off a fixed log-spaced histogram of the positive activations
(30 bins per decade from 1e-4 to 1e4: each quantile is exact to within one bin, about 8%).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformer_lens import HookedTransformer

from harness.engine.backend import LoadedSAE, load_hub_documents
from harness.engine.tokens import corpus_batches, real_tokens
from harness.spec import Experiment, HubDataset, prompt_list
from harness.studies.items import content_key

__all__ = [
    "QUANTILES",
    "ActivationStats",
    "activation_stats",
    "cached_activation_stats",
    "default_stats_cache",
    "stats_corpus",
]

QUANTILES = (0.5, 0.9, 0.99)
_EDGES = torch.logspace(-4, 4, 241)  # bin b holds values in [edge b-1, edge b)
_CACHE_VERSION = 1


@dataclass(frozen=True)
class ActivationStats:
    """Per-feature activation statistics over a corpus (real tokens only, never BOS/padding)."""

    max: torch.Tensor  # [d_sae]
    frequency: torch.Tensor  # [d_sae] fraction of tokens where the feature is > 0
    quantiles: torch.Tensor  # [d_sae, len(QUANTILES)] of the positive activations (0 if never)
    n_tokens: int
    source: str

    def describe(self, feature: int) -> dict[str, Any]:
        """One feature's statistics as plain numbers (for run records and reports)."""
        return {
            "max_activation": float(self.max[feature]),
            "frequency": float(self.frequency[feature]),
            "quantiles": {
                f"q{round(q * 100)}": float(v)
                for q, v in zip(QUANTILES, self.quantiles[feature], strict=True)
            },
            "n_tokens": self.n_tokens,
            "source": self.source,
        }


def _quantiles(counts: torch.Tensor) -> torch.Tensor:
    """Quantiles from histogram counts ``[d_sae, n_bins]`` (upper edge of the bin reached)."""
    total = counts.sum(dim=1, keepdim=True).clamp(min=1)
    cdf = counts.cumsum(dim=1) / total
    upper = torch.cat([_EDGES, _EDGES[-1:]])
    out = torch.zeros(counts.shape[0], len(QUANTILES))
    for j, q in enumerate(QUANTILES):
        idx = (cdf < q).sum(dim=1).clamp(max=len(upper) - 1)
        out[:, j] = torch.where(counts.sum(dim=1) > 0, upper[idx], torch.zeros(()))
    return out


@torch.no_grad()
def activation_stats(
    model: HookedTransformer,
    sae: LoadedSAE,
    documents: Sequence[str],
    source: str,
    batch_size: int = 32,
) -> ActivationStats:
    """Max activation, firing frequency and quantiles of every feature over ``documents``."""
    n_bins = len(_EDGES) + 1
    mx = torch.zeros(sae.d_sae)
    fired = torch.zeros(sae.d_sae)
    counts = torch.zeros(sae.d_sae * n_bins, dtype=torch.float64)
    n = 0
    for _, tokens in corpus_batches(model, documents, batch_size):
        _, cache = model.run_with_cache(tokens, names_filter=sae.hook_name)
        acts = sae.encode(cache[sae.hook_name]).cpu()
        real = real_tokens(model, tokens).cpu()
        flat = acts[real]
        if flat.shape[0] == 0:
            continue
        mx = torch.maximum(mx, flat.max(dim=0).values)
        positive = flat > 0
        fired += positive.float().sum(dim=0)
        rows, feats = positive.nonzero(as_tuple=True)
        bins = torch.bucketize(flat[rows, feats], _EDGES, right=True)
        counts.index_add_(0, feats * n_bins + bins, torch.ones(len(feats), dtype=torch.float64))
        n += flat.shape[0]
    return ActivationStats(
        max=mx,
        frequency=fired / max(n, 1),
        quantiles=_quantiles(counts.view(sae.d_sae, n_bins)),
        n_tokens=n,
        source=source,
    )


def stats_corpus(exp: Experiment) -> tuple[list[str], str]:
    """The documents feature statistics are computed on, and how the report names them."""
    from harness.toy.world import eval_documents

    ref = exp.stats_corpus
    if ref is None:
        docs = eval_documents()
        return docs, f"toy held-out corpus ({len(docs)} documents)"
    if isinstance(ref, HubDataset):
        docs = load_hub_documents(
            ref.path, ref.split, ref.text_field, ref.n_documents, "stats_corpus"
        )
        return docs, f"hub dataset {ref.path} [{ref.split}], first {len(docs)} documents"
    docs = list(prompt_list(ref))
    digest = hashlib.sha256("\n".join(docs).encode()).hexdigest()[:12]
    return docs, f"stats_corpus ({len(docs)} documents, sha256 {digest})"


def default_stats_cache() -> Path:
    """``$HARNESS_STATS_CACHE``, else ``~/.cache/harness/stats``."""
    env = os.environ.get("HARNESS_STATS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "harness" / "stats"


def _sae_fingerprint(sae: LoadedSAE) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(sae.sae.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def cached_activation_stats(
    model: HookedTransformer,
    model_identity: dict[str, Any],
    sae: LoadedSAE,
    documents: Sequence[str],
    source: str,
    cache_dir: Path | None = None,
) -> tuple[ActivationStats, bool]:
    """:func:`activation_stats`, loaded from the cache when the same model, SAE weights, hook and
    corpus were seen before; returns the stats and whether they came from the cache."""
    key = content_key(
        {
            "v": _CACHE_VERSION,
            "model": model_identity,
            "sae": _sae_fingerprint(sae),
            "hook": sae.hook_name,
            "corpus": hashlib.sha256("\x00".join(documents).encode()).hexdigest(),
        }
    )
    directory = cache_dir or default_stats_cache()
    path = directory / f"{key}.pt"
    if path.is_file():
        try:
            data = torch.load(path, weights_only=True)
            return ActivationStats(
                data["max"], data["frequency"], data["quantiles"], int(data["n_tokens"]), source
            ), True
        except Exception:  # a corrupt cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
    stats = activation_stats(model, sae, documents, source)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.close(fd)
    torch.save(
        {
            "max": stats.max,
            "frequency": stats.frequency,
            "quantiles": stats.quantiles,
            "n_tokens": torch.tensor(stats.n_tokens),
        },
        tmp,
    )
    os.replace(tmp, path)
    return stats, False
