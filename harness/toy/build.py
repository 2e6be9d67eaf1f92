"""Deterministic build of the toy world: corpus → tokenizer → TransformerLens model → SAELens SAEs.

`harness toy build` calls :func:`build`. Everything is derived from one seed and runs on one CPU
thread, so two builds on one machine are bit-for-bit identical; on another processor the float
kernels differ in their low bits, and :mod:`harness.toy.verify` states how close a rebuild is.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sae_lens import SAE, SAETrainer
from sae_lens.config import SAETrainerConfig
from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
from safetensors.torch import save_file
from transformer_lens import HookedTransformer, HookedTransformerConfig

from harness.toy.corpus import generate_corpus
from harness.toy.tokenizer import build_tokenizer, load_tokenizer

__all__ = ["SAEBuildConfig", "ToyBuildConfig", "build", "file_digests"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SAEBuildConfig:
    """How one toy SAE checkpoint is trained."""

    name: str
    architecture: str  # "standard" or "topk"
    d_sae: int
    l1_coefficient: float = 0.0
    k: int = 0
    lr: float = 1e-3
    epochs: int = 4
    batch_size: int = 512


@dataclass(frozen=True)
class ToyBuildConfig:
    """Every knob of the toy world; the defaults are what ships."""

    seed: int = 0
    n_documents: int = 3000
    n_ctx: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_mlp: int = 256
    train_steps: int = 800
    batch_size: int = 32
    lr: float = 2e-3
    hook_name: str = "blocks.1.hook_resid_pre"
    sae_documents: int = 1500
    saes: tuple[SAEBuildConfig, ...] = field(
        default_factory=lambda: (
            SAEBuildConfig(name="relu-256", architecture="standard", d_sae=256, l1_coefficient=0.5),
            SAEBuildConfig(name="topk-256", architecture="topk", d_sae=256, k=12),
            # a wider dictionary of the same kind: feature splitting across widths
            SAEBuildConfig(
                name="relu-1024", architecture="standard", d_sae=1024, l1_coefficient=1.0
            ),
        )
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _tokenize_documents(docs: list[str], tokenizer_path: Path, n_ctx: int) -> torch.Tensor:
    """Return ``[n_docs, n_ctx]`` token ids: BOS followed by the first ``n_ctx - 1`` words."""
    tok = load_tokenizer(tokenizer_path)
    bos = tok.bos_token_id
    rows = []
    for doc in docs:
        ids = tok.encode(doc, add_special_tokens=False)
        if len(ids) < n_ctx - 1:
            raise ValueError("toy document shorter than the context; raise min_words")
        rows.append([bos, *ids[: n_ctx - 1]])
    return torch.tensor(rows, dtype=torch.long)


def model_config(cfg: ToyBuildConfig, d_vocab: int) -> dict[str, object]:
    """The TransformerLens config arguments of the toy model (saved as ``model/config.json``)."""
    return dict(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_ctx=cfg.n_ctx,
        d_head=cfg.d_model // cfg.n_heads,
        n_heads=cfg.n_heads,
        d_mlp=cfg.d_mlp,
        d_vocab=d_vocab,
        act_fn="gelu",
        normalization_type="LN",
        model_name="harness-toy",
        seed=cfg.seed,
        default_prepend_bos=True,
    )


def _train_model(
    cfg: ToyBuildConfig, tokens: torch.Tensor, d_vocab: int, progress: Progress
) -> HookedTransformer:
    _seed_everything(cfg.seed)
    model = HookedTransformer(HookedTransformerConfig(**model_config(cfg, d_vocab)))  # type: ignore[arg-type]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.train_steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    for step in range(cfg.train_steps):
        idx = torch.randint(0, tokens.shape[0], (cfg.batch_size,), generator=gen)
        loss = model(tokens[idx], return_type="loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0 or step == cfg.train_steps - 1:
            progress(f"model step {step + 1}/{cfg.train_steps} loss {loss.item():.3f}")
    model.eval()
    return model


@torch.no_grad()
def collect_activations(
    model: HookedTransformer, tokens: torch.Tensor, hook_name: str, batch: int = 64
) -> torch.Tensor:
    """Activations at ``hook_name`` for every non-BOS position, flattened to ``[n, d_model]``."""
    out = []
    for start in range(0, tokens.shape[0], batch):
        _, cache = model.run_with_cache(tokens[start : start + batch], names_filter=hook_name)
        out.append(cache[hook_name][:, 1:, :].reshape(-1, model.cfg.d_model))
    return torch.cat(out)


def _batches(acts: torch.Tensor, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(acts.shape[0], generator=gen)
        for start in range(0, acts.shape[0] - batch_size + 1, batch_size):
            yield acts[perm[start : start + batch_size]]


def _train_sae(
    spec: SAEBuildConfig, acts: torch.Tensor, cfg: ToyBuildConfig, progress: Progress
) -> SAE[Any]:
    _seed_everything(cfg.seed)
    metadata = {"model_name": "harness-toy", "hook_name": cfg.hook_name, "context_size": cfg.n_ctx}
    sae: StandardTrainingSAE | TopKTrainingSAE
    if spec.architecture == "standard":
        sae = StandardTrainingSAE(
            StandardTrainingSAEConfig(
                d_in=cfg.d_model, d_sae=spec.d_sae, l1_coefficient=spec.l1_coefficient
            )
        )
    elif spec.architecture == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=cfg.d_model, d_sae=spec.d_sae, k=spec.k))
    else:
        raise ValueError(f"unknown toy SAE architecture {spec.architecture!r}")
    for key, value in metadata.items():
        sae.cfg.metadata[key] = value
    n_samples = spec.epochs * acts.shape[0]
    trainer = SAETrainer(
        cfg=SAETrainerConfig(
            total_training_samples=n_samples,
            train_batch_size_samples=spec.batch_size,
            lr=spec.lr,
            lr_end=spec.lr,
            lr_warm_up_steps=20,
            device="cpu",
        ),
        sae=sae,
        data_provider=_batches(acts, spec.batch_size, cfg.seed),
    )
    progress(f"training SAE {spec.name} ({spec.architecture}, d_sae={spec.d_sae})")
    return trainer.fit()


def file_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` except the manifest, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def build(out_dir: Path, cfg: ToyBuildConfig | None = None, progress: Progress = print) -> Path:
    """Build the toy world into ``out_dir`` and return it.

    Layout: ``tokenizer.json``, ``model/{config.json,model.safetensors}``,
    ``saes/<name>/`` in SAELens' disk format, ``corpus_eval.txt`` (held-out documents) and
    ``manifest.json`` (build config and file digests).
    """
    cfg = cfg or ToyBuildConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same float sums in the same order on any machine
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        docs = generate_corpus(cfg.seed, cfg.n_documents, min_words=cfg.n_ctx + 8)
        eval_docs = generate_corpus(cfg.seed + 1, 280, min_words=cfg.n_ctx + 8)
        tok = build_tokenizer([*docs, *eval_docs])
        tokenizer_path = out_dir / "tokenizer.json"
        tok.save(str(tokenizer_path))
        tokens = _tokenize_documents(docs, tokenizer_path, cfg.n_ctx)
        d_vocab = tok.get_vocab_size()
        progress(f"corpus: {len(docs)} documents, vocabulary {d_vocab}")

        model = _train_model(cfg, tokens, d_vocab, progress)
        model_dir = out_dir / "model"
        model_dir.mkdir(exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            str(model_dir / "model.safetensors"),
        )
        (model_dir / "config.json").write_text(
            json.dumps(model_config(cfg, d_vocab), indent=1, sort_keys=True)
        )

        acts = collect_activations(model, tokens[: cfg.sae_documents], cfg.hook_name)
        for spec in cfg.saes:
            sae = _train_sae(spec, acts, cfg, progress)
            _, cfg_path = sae.save_inference_model(out_dir / "saes" / spec.name)
            # SAELens writes cfg keys in set order; sorted keys make the file reproducible.
            cfg_path.write_text(
                json.dumps(json.loads(cfg_path.read_text()), indent=1, sort_keys=True)
            )

        (out_dir / "corpus_eval.txt").write_text("\n".join(eval_docs) + "\n")
        manifest = {
            "config": asdict(cfg),
            "files": file_digests(out_dir),
        }
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return out_dir
    finally:
        torch.set_num_threads(threads)
