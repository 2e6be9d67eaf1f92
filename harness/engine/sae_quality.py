"""Measuring SAE quality with ``sae_lens.evals``' definitions, kept per token sequence for error
bars (the statistics over the stored sums: :mod:`harness.analysis.quality`).

The token sequences are cut from the corpus exactly as SAELens' ``ActivationsStore`` cuts raw
text (``concat_and_batch_sequences``: documents tokenized without BOS, concatenated with a BOS
separator, each sequence starting with BOS when the SAE prepends one). Per sequence we keep sums
(squared reconstruction error, variance about the sample mean, L0, L1, cross-entropy with the SAE
spliced in / clean / zero-ablated, KL with the SAE / zero-ablated, token counts) over the tokens
``sae_lens.evals`` counts (special tokens excluded). The headline numbers are ratios of those sums,
which equal what ``sae_lens.evals.run_evals`` reports on the same sequences (a test holds this);
resampling sequences gives bootstrap CIs, and resampling the same sequences for two checkpoints
gives paired CIs of their differences.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.analysis.quality import (
    HIGHER_IS_BETTER,
    QUALITY_CONDITION,
    QUALITY_METRICS,
    QUALITY_NEEDS_CORPUS,
    QUALITY_STUDY,
    SUMS,
    paired_quality_difference,
    quality_estimates,
    quality_measurable,
    quality_rows,
    quality_values,
)
from harness.spec.experiment import SAEQualityEval
from harness.store import RunStore
from harness.studies.items import content_key

if TYPE_CHECKING:
    import torch
    from transformer_lens import HookedTransformer

    from harness.engine.backend import LoadedSAE

__all__ = [
    "HIGHER_IS_BETTER",
    "QUALITY_CONDITION",
    "QUALITY_METRICS",
    "QUALITY_NEEDS_CORPUS",
    "QUALITY_STUDY",
    "measure_quality",
    "paired_quality_difference",
    "quality_estimates",
    "quality_key",
    "quality_measurable",
    "quality_rows",
    "quality_tokens",
    "quality_values",
    "record_quality",
]


def quality_tokens(
    model: HookedTransformer, documents: list[str], context_size: int, n: int, prepend_bos: bool
) -> torch.Tensor:
    """The first ``n`` sequences of ``context_size`` tokens SAELens' activation store would cut
    from ``documents`` (fewer when the corpus runs out), as a ``[n, context_size]`` tensor."""
    import torch
    from sae_lens.pretokenize_runner import get_special_token_from_cfg
    from sae_lens.tokenization_and_batching import concat_and_batch_sequences

    tokenizer = model.tokenizer
    assert tokenizer is not None

    def documents_tokens() -> Iterator[torch.Tensor]:
        for doc in documents:
            yield model.to_tokens(doc, prepend_bos=False, truncate=False, move_to_device=False)[0]

    sequences: list[torch.Tensor] = []
    for seq in concat_and_batch_sequences(
        documents_tokens(),
        context_size,
        begin_batch_token_id=tokenizer.bos_token_id if prepend_bos else None,
        sequence_separator_token_id=get_special_token_from_cfg("bos", tokenizer),
    ):
        sequences.append(seq)
        if len(sequences) == n:
            break
    if not sequences:
        raise ValueError(f"the corpus holds fewer than {context_size} tokens")
    return torch.stack(sequences)


def _context_size(model: HookedTransformer, sae: LoadedSAE, cfg: SAEQualityEval) -> int:
    trained = getattr(sae.sae.cfg.metadata, "context_size", None)
    return int(min(cfg.context_size or trained or model.cfg.n_ctx, model.cfg.n_ctx))


def measure_quality(
    model: HookedTransformer,
    sae: LoadedSAE,
    documents: list[str],
    cfg: SAEQualityEval,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Per-sequence sums for every quality metric; the record ``harness run`` stores."""
    import torch

    with torch.no_grad():
        return _measure(model, sae, documents, cfg, progress)


def _measure(
    model: HookedTransformer,
    sae: LoadedSAE,
    documents: list[str],
    cfg: SAEQualityEval,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    import torch
    from sae_lens.evals import get_recons_loss
    from sae_lens.training.activation_scaler import ActivationScaler
    from sae_lens.util import extract_stop_at_layer_from_tlens_hook_name, get_special_token_ids

    prepend_bos = getattr(sae.sae.cfg.metadata, "prepend_bos", None)
    prepend_bos = True if prepend_bos is None else bool(prepend_bos)
    tokens = quality_tokens(
        model, documents, _context_size(model, sae, cfg), cfg.n_sequences, prepend_bos
    )
    assert model.tokenizer is not None
    ignore = list(get_special_token_ids(model.tokenizer))
    scaler = ActivationScaler()
    sums: dict[str, list[float]] = {k: [] for k in SUMS}
    x_sums: list[torch.Tensor] = []
    sq_norms: list[float] = []
    fired = torch.zeros(sae.d_sae, dtype=torch.bool)
    pictures = _Pictures(sae.d_sae)
    hook = sae.hook_name
    stop = extract_stop_at_layer_from_tlens_hook_name(hook)
    batches = tokens.split(cfg.batch_size)
    if progress is not None:
        progress(0, len(batches))
    for b, batch in enumerate(batches):
        batch = batch.to(model.cfg.device)
        mask = ~torch.isin(batch, torch.tensor(ignore, device=batch.device))
        per_token = get_recons_loss(
            sae.sae, model, scaler, batch, True, True, ignore_tokens=ignore, hook_name=hook
        )
        m = mask.float()
        # per-token CE has one position fewer (no target after the last token); as in sae_lens,
        # a position counts when its input token is not special
        cem = m[:, : per_token["ce_loss_with_sae"].shape[1]]
        _, cache = model.run_with_cache(
            batch, prepend_bos=False, names_filter=[hook], stop_at_layer=stop
        )
        x = cache[hook].float()
        if x.dim() == 4:  # per-head hook points: SAEs read the heads flattened
            x = x.flatten(-2, -1)
        f = sae.encode(x)
        x_hat = sae.decode(f)
        fired |= ((f != 0) & mask[..., None]).any(dim=(0, 1)).cpu()
        pictures.add(f, mask, batch, model)
        values = {
            "tokens": m.sum(1),
            "resid": (((x - x_hat) ** 2).sum(-1) * m).sum(1),
            "l0": ((f != 0).sum(-1) * m).sum(1),
            "l1": (f.abs().sum(-1) * m).sum(1),
            "ce_tokens": cem.sum(1),
            "ce_sae": (per_token["ce_loss_with_sae"].float() * cem).sum(1),
            "ce_clean": (per_token["ce_loss_without_sae"].float() * cem).sum(1),
            "ce_abl": (per_token["ce_loss_with_ablation"].float() * cem).sum(1),
            "kl_tokens": m.sum(1),
            "kl_sae": (per_token["kl_div_with_sae"].float() * m).sum(1),
            "kl_abl": (per_token["kl_div_with_ablation"].float() * m).sum(1),
        }
        for k, v in values.items():
            sums[k].extend(v.double().cpu().tolist())
        x64 = x.double() * m[..., None].double()
        x_sums.extend(x64.sum(1).cpu())
        sq_norms.extend((x64**2).sum((1, 2)).cpu().tolist())
        if progress is not None:
            progress(b + 1, len(batches))
    # Variance about the sample mean, split per sequence: Σ_i var_i = Σ‖x − x̄‖² exactly.
    n_tok = np.array(sums["tokens"])
    mean = torch.stack(x_sums).sum(0) / max(n_tok.sum(), 1.0)
    sums["var"] = [
        float(sq - 2 * (s @ mean) + n * (mean @ mean))
        for sq, s, n in zip(sq_norms, x_sums, n_tok, strict=True)
    ]
    return {
        "n_sequences": int(tokens.shape[0]),
        "context_size": int(tokens.shape[1]),
        "tokens_sha256": hashlib.sha256(tokens.cpu().numpy().tobytes()).hexdigest()[:16],
        "d_sae": sae.d_sae,
        "alive": int(fired.sum()),
        "per_sequence": {k: sums[k] for k in SUMS},
        "distributions": pictures.record(),
    }


MAGNITUDE_EDGES = np.linspace(-4.0, 4.0, 81)  # log10 bins of non-zero activations
HEATMAP_FEATURES, HEATMAP_TOKENS = 24, 48


class _Pictures:
    """What the SAE-quality pictures are drawn from: firing counts per feature, the L0 of each
    token, a log10 histogram of non-zero activations, and the most frequent features' activations
    on the first sequence's first tokens (special tokens excluded throughout)."""

    def __init__(self, d_sae: int) -> None:
        import torch

        self.fire = torch.zeros(d_sae, dtype=torch.long)
        self.l0: torch.Tensor = torch.zeros(1, dtype=torch.long)
        self.magnitudes = torch.zeros(len(MAGNITUDE_EDGES) - 1, dtype=torch.long)
        self.first: tuple[torch.Tensor, list[str]] | None = None

    def add(self, f: torch.Tensor, mask: torch.Tensor, batch: torch.Tensor, model: Any) -> None:
        import torch

        on = (f != 0) & mask[..., None]
        self.fire += on.sum(dim=(0, 1)).cpu()
        l0 = torch.bincount(on.sum(-1)[mask].cpu())
        if len(l0) > len(self.l0):
            l0[: len(self.l0)] += self.l0
            self.l0 = l0
        else:
            self.l0[: len(l0)] += l0
        values = f[on].abs().float().log10().clamp(MAGNITUDE_EDGES[0], MAGNITUDE_EDGES[-1] - 1e-6)
        self.magnitudes += torch.histc(
            values.cpu(), bins=len(self.magnitudes), min=MAGNITUDE_EDGES[0], max=MAGNITUDE_EDGES[-1]
        ).long()
        if self.first is None:
            keep = mask[0].nonzero().flatten()[:HEATMAP_TOKENS]
            ids = batch[0, keep].cpu().tolist()
            self.first = f[0, keep].float().cpu(), model.tokenizer.convert_ids_to_tokens(ids)

    def record(self) -> dict[str, Any]:
        import torch

        top = torch.argsort(self.fire, descending=True, stable=True)[:HEATMAP_FEATURES]
        acts, tokens = self.first if self.first is not None else (torch.zeros(0, 0), [])
        return {
            "fire_counts": self.fire.tolist(),
            "l0_counts": self.l0.tolist(),
            "magnitude_edges": MAGNITUDE_EDGES.tolist(),
            "magnitude_counts": self.magnitudes.tolist(),
            "heatmap": {
                "features": top.tolist(),
                "tokens": [str(t) for t in tokens],
                "values": acts[:, top].tolist() if len(tokens) else [],
            },
        }


def quality_key(label: str, cfg: SAEQualityEval, source: str) -> str:
    """The key of SAE ``label``'s quality record measured by ``cfg`` on corpus ``source``."""
    return content_key(
        {"what": QUALITY_STUDY, "sae": label, "cfg": cfg.model_dump(), "corpus": source}
    )


def record_quality(
    model: HookedTransformer,
    sae: LoadedSAE,
    cfg: SAEQualityEval,
    documents: list[str],
    source: str,
    store: RunStore,
    progress: Callable[[int, int], None] | None = None,
) -> bool:
    """Measure one SAE's quality into the run store unless it is there; True when measured."""
    key = quality_key(sae.label, cfg, source)
    if key in store.done_keys(QUALITY_STUDY):
        return False
    record = measure_quality(model, sae, documents, cfg, progress)
    store.append(
        [{"kind": QUALITY_STUDY, "key": key, "sae": sae.label, "corpus": source, **record}]
    )
    return True
