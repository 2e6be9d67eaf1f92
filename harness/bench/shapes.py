"""``harness bench sweep --shape``: the clamp sweep at real model sizes, with random weights.

A TransformerLens model with an architecture's config (GPT-2 small, Llama-2-7B) and seeded random
weights costs the same compute as the trained model and needs no download; so does a SAELens SAE
of the given width and architecture. On the same rows (levels × prompts × new tokens, plus one
unclamped baseline row per prompt) it times, in one process:

- the harness engine: one batched, KV-cached generation, each row with its own clamp value,
  error term kept (``generate_rows``);
- SAELens' own path as a user would write it: ``HookedSAETransformer`` with the SAE attached
  (``use_error_term=True``), a hook on ``hook_sae_acts_post`` that sets the feature, one
  batched ``generate`` per level, and one for the unclamped baseline without the SAE;
- the per-prompt per-level loop (one ``generate`` per prompt and level, ``decode(encode(x))``);
- the same rows generated with no intervention.

It also measures the machine's matmul throughput on the model's own decode shapes and reports
the fraction of it the harness reaches, tokens per second and peak memory; on a GPU also the
memory-bandwidth bound of decoding (weights and KV cache read per step, against a measured
device copy bandwidth).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["SHAPES", "ShapeBench", "bench_shape"]

SHAPES: dict[str, dict[str, Any]] = {
    "gpt2-small": dict(
        n_layers=12,
        d_model=768,
        n_heads=12,
        d_head=64,
        d_mlp=3072,
        d_vocab=50257,
        n_ctx=1024,
        act_fn="gelu_new",
        normalization_type="LN",
    ),
    "llama-2-7b": dict(
        n_layers=32,
        d_model=4096,
        n_heads=32,
        d_head=128,
        d_mlp=11008,
        d_vocab=32000,
        n_ctx=4096,
        act_fn="silu",
        normalization_type="RMS",
        positional_embedding_type="rotary",
        rotary_dim=128,
        gated_mlp=True,
        final_rms=True,
    ),
}
DEFAULT_HOOK = {"gpt2-small": "blocks.6.hook_resid_pre", "llama-2-7b": "blocks.16.hook_resid_pre"}


@dataclass(frozen=True)
class ShapeBench:
    """Results of one shape × SAE architecture."""

    shape: str
    arch: str
    sae_width: int
    device: str
    rows: int
    new_tokens: int
    harness_s: float
    saelens_s: float
    seed_loop_s: float
    unclamped_s: float
    speedup_vs_saelens: float
    speedup_vs_seed_loop: float
    intervention_overhead: float
    tokens_per_s: float
    matmul_gflops: float
    model_gflops: float
    fraction_of_matmul: float
    peak_memory_mb: float
    peak_memory_kind: str
    memory_gbps: float | None = None  # CUDA: measured device-memory copy bandwidth
    decode_gbps: float | None = None  # CUDA: weights + KV cache read per step, per second
    fraction_of_bandwidth: float | None = None  # CUDA: decode_gbps / memory_gbps

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _tokenizer(d_vocab: int, folder: Path) -> Any:
    """A word-level tokenizer with exactly ``d_vocab`` entries (``w0`` … plus the specials), so
    every token a random model emits decodes."""
    from harness.toy.tokenizer import build_tokenizer, load_tokenizer

    tok = build_tokenizer([], extra_words=[f"w{i}" for i in range(d_vocab - 4)])
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return load_tokenizer(path)


def _sae(arch: str, d_in: int, width: int, hook: str, device: str) -> Any:
    from sae_lens import (
        JumpReLUSAE,
        JumpReLUSAEConfig,
        StandardSAE,
        StandardSAEConfig,
        TopKSAE,
        TopKSAEConfig,
    )

    meta = {"hook_name": hook}
    if arch == "relu":
        sae: Any = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=width, device=device))
    elif arch == "topk":
        sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=width, k=64, device=device))
    elif arch == "jumprelu":
        sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=d_in, d_sae=width, device=device))
    else:
        raise ValueError(f"unknown SAE architecture {arch!r}; valid: relu, topk, jumprelu")
    for k, v in meta.items():
        sae.cfg.metadata[k] = v
    with torch.no_grad():  # a random SAE whose features fire on about half the tokens
        sae.b_enc.zero_()
    return sae.eval()


def _time(fn: Callable[[], object], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _matmul_gflops(rows: int, d_model: int, d_mlp: int, device: str, dtype: torch.dtype) -> float:
    """Achieved GFLOP/s of the decode step's largest matmul ([rows, d_model] × [d_model, d_mlp])."""
    a = torch.randn(rows, d_model, device=device, dtype=dtype)
    b = torch.randn(d_model, d_mlp, device=device, dtype=dtype)
    reps = 200
    for _ in range(10):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    took = time.perf_counter() - start
    return 2 * rows * d_model * d_mlp * reps / took / 1e9


def _copy_gbps(device: str) -> float:
    """Measured device-memory bandwidth: a 1 GiB copy, read and written (GB/s)."""
    src = torch.empty(2**28, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    torch.cuda.synchronize()
    return 2 * src.numel() * 4 * 10 / (time.perf_counter() - start) / 1e9


def _decode_bytes(model: Any, rows: int, context: int) -> float:
    """Bytes a decode step reads: every weight once, and the KV cache of every row."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    cfg = model.cfg
    kv = 2 * cfg.n_layers * rows * context * cfg.n_heads * cfg.d_head * 4
    return float(weights + kv)


@torch.no_grad()
def bench_shape(
    shape: str = "gpt2-small",
    arch: str = "relu",
    sae_width: int = 24576,
    device: str = "cpu",
    n_prompts: int = 8,
    levels: tuple[float, ...] = (0, 1, 2, 5, 10),
    new_tokens: int = 16,
    prompt_tokens: int = 12,
    repeats: int = 2,
    say: Callable[[str], None] = print,
) -> ShapeBench:
    """Time the four paths at one shape (see the module docstring)."""
    from sae_lens import HookedSAETransformer
    from transformer_lens import HookedTransformerConfig

    from harness.bench.sweep import _peak_memory
    from harness.engine.generation import ClampTarget, GenRow, generate_rows

    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; valid: {sorted(SHAPES)}")
    if shape == "llama-2-7b" and not device.startswith("cuda"):
        raise ValueError(
            "the llama-2-7b shape runs with --device cuda only (minutes per pass on a CPU)"
        )
    cfg_dict = {**SHAPES[shape], "seed": 0, "device": device, "default_prepend_bos": True}
    hook = DEFAULT_HOOK[shape]
    with tempfile.TemporaryDirectory() as folder:
        tok = _tokenizer(cfg_dict["d_vocab"], Path(folder))
    torch.manual_seed(0)
    cfg = HookedTransformerConfig(**cfg_dict)
    model = HookedSAETransformer(cfg, tokenizer=tok).eval()
    sae = _sae(arch, cfg.d_model, sae_width, hook, device)
    gen = torch.Generator().manual_seed(0)
    prompts = [
        " ".join(
            f"w{int(t)}" for t in torch.randint(0, cfg.d_vocab - 4, (prompt_tokens,), generator=gen)
        )
        for _ in range(n_prompts)
    ]
    feature = 0
    values: list[float | None] = [None, *levels]
    rows = [GenRow(p, None if v is None else (float(v),)) for v in values for p in prompts]
    plain = [GenRow(r.prompt) for r in rows]
    target = ClampTarget(sae, hook, (feature,))

    def harness_sweep() -> object:
        return generate_rows(model, rows, target, max_new_tokens=new_tokens)

    def unclamped() -> object:
        return generate_rows(model, plain, None, max_new_tokens=new_tokens)

    tokens = model.to_tokens(prompts)  # equal lengths: no padding in SAELens' batches

    def saelens_path() -> object:
        out = [model.generate(tokens, max_new_tokens=new_tokens, do_sample=False, verbose=False)]
        model.add_sae(sae, use_error_term=True)
        try:
            for level in levels:

                def clamp(acts: torch.Tensor, hook: Any, v: float = float(level)) -> torch.Tensor:
                    acts[..., feature] = v
                    return acts

                name = f"{hook}.hook_sae_acts_post"
                with model.hooks(fwd_hooks=[(name, clamp)]):
                    out.append(
                        model.generate(
                            tokens, max_new_tokens=new_tokens, do_sample=False, verbose=False
                        )
                    )
        finally:
            model.reset_saes()
        return out

    def seed_loop() -> None:
        for prompt in prompts:
            for value in values:
                hooks = []
                if value is not None:

                    def replace(
                        x: torch.Tensor, hook: Any, v: float = float(value)
                    ) -> torch.Tensor:
                        f = sae.encode(x)
                        f[..., feature] = v
                        return sae.decode(f)  # type: ignore[no-any-return]

                    hooks = [(hook, replace)]
                with model.hooks(fwd_hooks=hooks):
                    model.generate(
                        prompt, max_new_tokens=new_tokens, do_sample=False, verbose=False
                    )

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    say(f"{shape} × {arch}-{sae_width}: {len(rows)} rows × {new_tokens} new tokens on {device}")
    harness_sweep()  # warm-up; the memory peak is the sweep's
    peak, peak_kind = _peak_memory(device)
    t_harness = t_plain = math.inf
    for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
        t_harness = min(t_harness, _time(harness_sweep, 1))
        t_plain = min(t_plain, _time(unclamped, 1))
    say(f"  harness {t_harness:.2f} s, unintervened {t_plain:.2f} s; SAELens' path …")
    t_saelens = _time(saelens_path, repeats)
    say(f"  SAELens {t_saelens:.2f} s; the per-prompt loop …")
    t_seed = _time(seed_loop, 1)
    d_mlp = int(cfg.d_mlp or 4 * cfg.d_model)
    flops_per_token = 2 * (
        cfg.n_layers
        * (4 * cfg.d_model * cfg.d_model + (3 if cfg.gated_mlp else 2) * cfg.d_model * d_mlp)
        + cfg.d_model * cfg.d_vocab
    )
    n_tokens = len(rows) * new_tokens
    model_gflops = flops_per_token * n_tokens / t_harness / 1e9
    matmul = _matmul_gflops(len(rows), cfg.d_model, d_mlp, device, cfg.dtype)
    bandwidth: dict[str, float | None] = {}
    if device.startswith("cuda"):  # decode is bound by memory bandwidth on a GPU
        mean_context = prompt_tokens + 1 + new_tokens / 2
        moved = _decode_bytes(model, len(rows), int(mean_context)) * new_tokens / t_harness / 1e9
        peak_bw = _copy_gbps(device)
        bandwidth = {
            "memory_gbps": round(peak_bw, 1),
            "decode_gbps": round(moved, 1),
            "fraction_of_bandwidth": round(moved / peak_bw, 3),
        }
    return ShapeBench(
        **bandwidth,
        shape=shape,
        arch=arch,
        sae_width=sae_width,
        device=device,
        rows=len(rows),
        new_tokens=new_tokens,
        harness_s=round(t_harness, 3),
        saelens_s=round(t_saelens, 3),
        seed_loop_s=round(t_seed, 3),
        unclamped_s=round(t_plain, 3),
        speedup_vs_saelens=round(t_saelens / t_harness, 2),
        speedup_vs_seed_loop=round(t_seed / t_harness, 2),
        intervention_overhead=round(t_harness / t_plain, 3),
        tokens_per_s=round(n_tokens / t_harness, 1),
        matmul_gflops=round(matmul, 1),
        model_gflops=round(model_gflops, 1),
        fraction_of_matmul=round(model_gflops / matmul, 3),
        peak_memory_mb=round(peak, 1),
        peak_memory_kind=peak_kind,
    )
