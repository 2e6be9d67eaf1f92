"""SAE quality with ``sae_lens.evals``' definitions, kept per token sequence for error bars.

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

from harness.aggregate import summary_row
from harness.metrics.stats import Estimate
from harness.plan import content_key
from harness.spec import Experiment, SAEQualityEval, ToyModel
from harness.store import RunStore

if TYPE_CHECKING:
    import torch
    from transformer_lens import HookedTransformer

    from harness.backend import LoadedSAE

__all__ = [
    "HIGHER_IS_BETTER",
    "QUALITY_METRICS",
    "QUALITY_NEEDS_CORPUS",
    "QUALITY_STUDY",
    "measure_quality",
    "paired_quality_difference",
    "quality_estimates",
    "quality_measurable",
    "quality_rows",
    "quality_tokens",
    "quality_values",
    "record_quality",
]

QUALITY_STUDY = "sae_quality"  # the study name SAE-quality rows carry (reserved)
QUALITY_CONDITION = "all"
QUALITY_NEEDS_CORPUS = (
    "a real model's SAE quality is measured on its own text; set stats_corpus (a PromptFile of "
    "documents, a tuple of texts or a HubDataset)"
)


def quality_measurable(exp: Experiment) -> bool:
    """Whether a run of ``exp`` measures SAE quality: asked for, and a corpus to measure it on
    (the toy corpus for the toy model; ``stats_corpus`` otherwise)."""
    return exp.sae_quality is not None and (
        isinstance(exp.model, ToyModel) or exp.stats_corpus is not None
    )


# metric → higher is better (None: neither, e.g. L0 is a sparsity setting, not a score)
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "explained_variance": True,
    "mse": False,
    "l0": None,
    "l1": None,
    "dead_fraction": False,
    "ce_loss_score": True,
    "ce_loss_with_sae": False,
    "ce_loss_without_sae": None,
    "ce_loss_with_ablation": None,
    "kl_div_score": True,
    "kl_div_with_sae": False,
    "kl_div_with_ablation": None,
}
QUALITY_METRICS = tuple(HIGHER_IS_BETTER)
_SUMS = (
    "tokens",
    "resid",
    "var",
    "l0",
    "l1",
    "ce_tokens",
    "ce_sae",
    "ce_clean",
    "ce_abl",
    "kl_tokens",
    "kl_sae",
    "kl_abl",
)


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
    sums: dict[str, list[float]] = {k: [] for k in _SUMS}
    x_sums: list[torch.Tensor] = []
    sq_norms: list[float] = []
    fired = torch.zeros(sae.d_sae, dtype=torch.bool)
    hook = sae.hook_name
    stop = extract_stop_at_layer_from_tlens_hook_name(hook)
    batches = tokens.split(cfg.batch_size)
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
        "per_sequence": {k: sums[k] for k in _SUMS},
    }


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
    key = content_key(
        {"what": QUALITY_STUDY, "sae": sae.label, "cfg": cfg.model_dump(), "corpus": source}
    )
    if key in store.done_keys(QUALITY_STUDY):
        return False
    record = measure_quality(model, sae, documents, cfg, progress)
    store.append(
        [{"kind": QUALITY_STUDY, "key": key, "sae": sae.label, "corpus": source, **record}]
    )
    return True


def quality_rows(store: RunStore, seed: int) -> list[dict[str, Any]]:
    """Summary rows (study ``sae_quality``, condition ``all``) for every measured SAE."""
    rng = np.random.default_rng(seed)
    rows = []
    for rec in sorted(store.records(QUALITY_STUDY), key=lambda r: str(r["sae"])):
        for metric, est in quality_estimates(rec, rng).items():
            group = (rec["sae"], QUALITY_STUDY, QUALITY_CONDITION)
            rows.append(summary_row(group, metric, est.value, est.ci_low, est.ci_high, est.n))
    return rows


def _ratios(s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every metric from (possibly resampled, last axis summed) per-sequence sums."""
    t = {k: v.sum(-1) for k, v in s.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "explained_variance": 1 - t["resid"] / t["var"],
            "mse": t["resid"] / t["tokens"],
            "l0": t["l0"] / t["tokens"],
            "l1": t["l1"] / t["tokens"],
            "ce_loss_score": (t["ce_abl"] - t["ce_sae"]) / (t["ce_abl"] - t["ce_clean"]),
            "ce_loss_with_sae": t["ce_sae"] / t["ce_tokens"],
            "ce_loss_without_sae": t["ce_clean"] / t["ce_tokens"],
            "ce_loss_with_ablation": t["ce_abl"] / t["ce_tokens"],
            "kl_div_score": (t["kl_abl"] - t["kl_sae"]) / t["kl_abl"],
            "kl_div_with_sae": t["kl_sae"] / t["kl_tokens"],
            "kl_div_with_ablation": t["kl_abl"] / t["kl_tokens"],
        }


def _arrays(record: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(record["per_sequence"][k], dtype=float) for k in _SUMS}


def quality_values(record: dict[str, Any]) -> dict[str, float]:
    """The headline value of every metric (what ``sae_lens.evals`` reports on these tokens)."""
    values = {k: float(v) for k, v in _ratios(_arrays(record)).items()}
    values["dead_fraction"] = 1.0 - record["alive"] / record["d_sae"]
    return values


def _resample_indices(n: int, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    return rng.integers(0, n, size=(n_resamples, n))


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(low), float(high)


def quality_estimates(
    record: dict[str, Any],
    rng: np.random.Generator,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> dict[str, Estimate]:
    """Each metric with a bootstrap CI over sequences (n = sequences). The dead fraction is a
    count over the whole sample and gets no CI."""
    arrays = _arrays(record)
    n = len(arrays["tokens"])
    idx = _resample_indices(n, rng, n_resamples)
    draws = _ratios({k: v[idx] for k, v in arrays.items()})
    values = quality_values(record)
    out = {k: Estimate(values[k], *_interval(draws[k], confidence), n) for k in draws}
    out["dead_fraction"] = Estimate(values["dead_fraction"], float("nan"), float("nan"), n)
    return {k: out[k] for k in QUALITY_METRICS}


def paired_quality_difference(
    before: dict[str, Any],
    after: dict[str, Any],
    metric: str,
    rng: np.random.Generator,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> Estimate:
    """``after − before`` for one metric, resampling the same sequences for both; the CI is NaN
    when the two were measured on different tokens (then nothing pairs) or for the dead fraction."""
    diff = quality_values(after)[metric] - quality_values(before)[metric]
    n = int(before["n_sequences"])
    paired = before["tokens_sha256"] == after["tokens_sha256"]
    if not paired or metric == "dead_fraction":
        return Estimate(diff, float("nan"), float("nan"), n if paired else 0)
    idx = _resample_indices(n, rng, n_resamples)
    a = _ratios({k: v[idx] for k, v in _arrays(before).items()})[metric]
    b = _ratios({k: v[idx] for k, v in _arrays(after).items()})[metric]
    return Estimate(diff, *_interval(b - a, confidence), n)
