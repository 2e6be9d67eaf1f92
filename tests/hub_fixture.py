"""An offline Hugging Face hub in the real repositories' layout, built at test time.

``build_hub(root)`` writes into ``root`` (an ``HF_HOME``) exactly the files that
``HookedTransformer.from_pretrained`` and ``SAE.from_pretrained`` read for real repositories, with
the real config files and random weights at the real shapes:

- ``gpt2``: GPT-2 small's ``config.json`` and ``generation_config.json`` as published, a
  ``model.safetensors`` of random weights (124 M parameters), and a byte-level BPE tokenizer
  (``tokenizer.json``, ``vocab.json``, ``merges.txt``) of the real vocabulary size with
  ``<|endoftext|>`` at id 50256. The tokenizer is trained here on a small corpus (the real one is
  not on this machine), so its ids are not GPT-2's; the files and their roles are.
- ``jbloom/GPT2-Small-SAEs-Reformatted`` (SAELens release ``gpt2-small-res-jb``, whose release
  entry asks for ``center_writing_weights=True``): ``blocks.4.hook_resid_pre`` with a pre-6.0
  ``cfg.json`` carrying that repository's fields, ``sae_weights.safetensors`` (d_in 768, d_sae
  24576) and ``sparsity.safetensors``; ``blocks.3.hook_resid_pre`` with its ``cfg.json`` only
  (enough for validation, which reads configs alone). The SAE is built to reconstruct exactly:
  features ±q for an orthonormal basis q of the residual stream, the rest never firing.
- ``EleutherAI/pythia-14m``: the published ``config.json`` (GPT-NeoX, parallel attention and
  MLP, rotary), random weights whose token embeddings carry a large constant offset (real
  residual streams have a large mean direction; centring the writing weights removes it), and a
  tokenizer with ``<|endoftext|>`` at id 0.

- ``harness-fixture/gpt2-proxy-saes``: a repository (loaded by its id) of one SAE trained on
  GPT-2 through SAELens' ``HookedProxyLM`` (``model_class_name: AutoModelForCausalLM``).

``sae_for_pythia(folder, hf_home)`` trains a small SAE (plain torch, seconds) on pythia-14m's
activations loaded without processing, and saves it in SAELens' format with the metadata a
SAELens training run writes. ``configs_only(src, dst)`` copies a hub keeping only config files:
validation must pass or fail on it exactly as on the full hub, proving it reads no weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

GPT2_CONFIG: dict[str, Any] = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": 50256,
    "embd_pdrop": 0.1,
    "eos_token_id": 50256,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_ctx": 1024,
    "n_embd": 768,
    "n_head": 12,
    "n_inner": None,
    "n_layer": 12,
    "n_positions": 1024,
    "reorder_and_upcast_attn": False,
    "resid_pdrop": 0.1,
    "scale_attn_by_inverse_layer_idx": False,
    "scale_attn_weights": True,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257,
}
GPT2_GENERATION = {"_from_model_config": True, "bos_token_id": 50256, "eos_token_id": 50256}

PYTHIA_14M_CONFIG: dict[str, Any] = {
    "architectures": ["GPTNeoXForCausalLM"],
    "bos_token_id": 0,
    "eos_token_id": 0,
    "hidden_act": "gelu",
    "hidden_size": 128,
    "initializer_range": 0.02,
    "intermediate_size": 512,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 2048,
    "model_type": "gpt_neox",
    "num_attention_heads": 4,
    "num_hidden_layers": 6,
    "rotary_emb_base": 10000,
    "rotary_pct": 0.25,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "use_cache": True,
    "use_parallel_residual": True,
    "vocab_size": 50304,
}

# the fields of the release's cfg.json (pre-SAELens-6 training code: mats_sae_training)
JB_CFG: dict[str, Any] = {
    "model_name": "gpt2-small",
    "hook_point_layer": 4,
    "hook_point_head_index": None,
    "dataset_path": "Skylion007/openwebtext",
    "is_dataset_tokenized": False,
    "context_size": 128,
    "use_cached_activations": False,
    "d_in": 768,
    "n_batches_in_buffer": 128,
    "total_training_tokens": 300000000,
    "store_batch_size": 32,
    "device": "mps",
    "seed": 42,
    "dtype": "torch.float32",
    "b_dec_init_method": "geometric_median",
    "expansion_factor": 32,
    "from_pretrained_path": None,
    "l1_coefficient": 8e-05,
    "lr": 0.0004,
    "lr_scheduler_name": None,
    "lr_warm_up_steps": 5000,
    "train_batch_size": 4096,
    "use_ghost_grads": False,
    "feature_sampling_window": 1000,
    "dead_feature_window": 5000,
    "dead_feature_threshold": 1e-08,
    "log_to_wandb": True,
    "wandb_project": "mats_sae_training_gpt2_small_resid_pre_5",
    "wandb_log_frequency": 100,
    "n_checkpoints": 10,
    "d_sae": 24576,
    "tokens_per_buffer": 67108864,
    "run_name": "24576-L1-8e-05-LR-0.0004-Tokens-3.000e+08",
}

FIXTURE_VERSION = 3  # bump when the files written change (caches key on the commit)
EMBED_OFFSET = 2.0  # pythia-14m's constant embedding offset (its residual's mean direction)
PYTHIA_HOOK = "blocks.2.hook_resid_post"


def _text() -> str:
    """Training text for the tokenizer: the toy corpus and the experiments' documents."""
    from harness.toy.world import eval_documents

    here = Path(__file__).resolve().parents[1]
    extra = (here / "experiments" / "data" / "bridges_and_more.txt").read_text()
    specs = "\n".join(p.read_text() for p in sorted((here / "experiments").glob("*.py")))
    return "\n".join([*eval_documents(), extra, specs * 20]) * 3


def snapshot(hf_home: Path, repo_id: str) -> Path:
    """The snapshot folder of ``repo_id`` in the hub cache under ``hf_home`` (created, with the
    ``refs/main`` that points at it)."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    sha = hashlib.sha1(f"{repo_id}@fixture-{FIXTURE_VERSION}".encode()).hexdigest()
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(sha)
    folder = repo / "snapshots" / sha
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_tokenizer(
    folder: Path, vocab_size: int, specials: dict[int, str], max_length: int
) -> None:
    """A byte-level BPE tokenizer of exactly ``vocab_size`` ids, the special tokens at the ids
    ``specials`` gives (merges learnt from a small corpus; the rest of the ids are fillers)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=8000,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(_text().splitlines(), trainer)
    learnt = json.loads(tok.to_str())["model"]
    vocab = sorted(learnt["vocab"], key=lambda t: learnt["vocab"][t])
    merges = [m if isinstance(m, str) else " ".join(m) for m in learnt["merges"]]
    fillers = iter(f"Ġfill{i}" for i in range(vocab_size))
    ordered: list[str] = []
    learnt_iter = iter(vocab)
    for i in range(vocab_size):
        if i in specials:
            ordered.append(specials[i])
        else:
            ordered.append(next(learnt_iter, None) or next(fillers))
    ids = {t: i for i, t in enumerate(ordered)}
    (folder / "vocab.json").write_text(json.dumps(ids))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    full = Tokenizer(models.BPE(vocab=ids, merges=[tuple(m.split(" ")) for m in merges]))
    full.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    full.decoder = decoders.ByteLevel()
    full.add_special_tokens(list(specials.values()))
    full.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "model_max_length": max_length,
                "bos_token": "<|endoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
            }
        )
    )


def _save_weights(model: Any, folder: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", True):
        state.pop("lm_head.weight", None)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def write_gpt2(hf_home: Path) -> Path:
    """GPT-2 small: real config, random weights, a tokenizer of the real vocabulary size."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = snapshot(hf_home, "gpt2")
    (folder / "config.json").write_text(json.dumps(GPT2_CONFIG, indent=2))
    (folder / "generation_config.json").write_text(json.dumps(GPT2_GENERATION))
    write_tokenizer(folder, 50257, {50256: "<|endoftext|>"}, 1024)
    torch.manual_seed(0)
    _save_weights(GPT2LMHeadModel(GPT2Config(**GPT2_CONFIG)), folder)
    return folder


def write_pythia(hf_home: Path) -> Path:
    """pythia-14m: real config, random weights with a constant offset on every embedding."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    folder = snapshot(hf_home, "EleutherAI/pythia-14m")
    (folder / "config.json").write_text(json.dumps(PYTHIA_14M_CONFIG, indent=2))
    write_tokenizer(folder, 50304, {0: "<|endoftext|>", 1: "<|padding|>"}, 2048)
    torch.manual_seed(1)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(**PYTHIA_14M_CONFIG))
    with torch.no_grad():
        model.gpt_neox.embed_in.weight += EMBED_OFFSET
    _save_weights(model, folder)
    return folder


def write_jb_release(hf_home: Path) -> Path:
    """``gpt2-small-res-jb`` at ``blocks.4.hook_resid_pre`` (and blocks.3's config)."""
    import torch
    from safetensors.torch import save_file

    root = snapshot(hf_home, "jbloom/GPT2-Small-SAEs-Reformatted")
    for layer in (3, 4):
        hook = f"blocks.{layer}.hook_resid_pre"
        cfg = {
            **JB_CFG,
            "hook_point": hook,
            "hook_point_layer": layer,
            "cached_activations_path": f"activations/Skylion007_openwebtext/gpt2-small/{hook}",
            "checkpoint_path": f"checkpoints/{hook}",
        }
        (root / hook).mkdir(exist_ok=True)
        (root / hook / "cfg.json").write_text(json.dumps(cfg, indent=2))
    d_in, d_sae = 768, 24576
    gen = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(d_in, d_in, generator=gen))
    w_enc = torch.randn(d_in, d_sae, generator=gen) / d_in**0.5
    w_enc[:, :d_in], w_enc[:, d_in : 2 * d_in] = q, -q
    b_enc = torch.full((d_sae,), -1e4)
    b_enc[: 2 * d_in] = 0.0
    w_dec = w_enc.T.contiguous()
    folder = root / "blocks.4.hook_resid_pre"
    save_file(
        {"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": torch.zeros(d_in)},
        str(folder / "sae_weights.safetensors"),
    )
    sparsity = torch.full((d_sae,), -10.0)
    sparsity[: 2 * d_in] = -0.3
    save_file({"sparsity": sparsity}, str(folder / "sparsity.safetensors"))
    return root


PROXY_REPO = "harness-fixture/gpt2-proxy-saes"  # not a real repository: see write_proxy_release


def write_proxy_release(hf_home: Path) -> Path:
    """A repository of SAELens-format SAEs trained through SAELens' ``HookedProxyLM`` (the
    metadata a SAELens 6 run on a Hugging Face class writes: ``model_class_name:
    AutoModelForCausalLM``, an HF module name as hook), as Qwen 3 / Gemma 3 runs publish them;
    loaded by repository id (``PretrainedSAE(release=PROXY_REPO, sae_id="transformer.h.4")``)."""
    import torch
    from safetensors.torch import save_file

    root = snapshot(hf_home, PROXY_REPO)
    folder = root / "transformer.h.4"
    folder.mkdir(exist_ok=True)
    d_in, d_sae = 768, 1024
    gen = torch.Generator().manual_seed(3)
    w_enc = torch.randn(d_in, d_sae, generator=gen) / d_in**0.5
    save_file(
        {"W_enc": w_enc, "b_enc": torch.zeros(d_sae), "W_dec": w_enc.T.contiguous(),
         "b_dec": torch.zeros(d_in)},
        str(folder / "sae_weights.safetensors"),
    )  # fmt: skip
    cfg = {
        "architecture": "standard",
        "d_in": d_in,
        "d_sae": d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": "6.5.1",
            "sae_lens_training_version": "6.5.1",
            "model_name": "gpt2",
            "model_class_name": "AutoModelForCausalLM",
            "hook_name": "transformer.h.4",
            "hook_head_index": None,
            "model_from_pretrained_kwargs": {},
            "prepend_bos": True,
            "context_size": 128,
            "dataset_path": "Skylion007/openwebtext",
            "exclude_special_tokens": False,
            "seqpos_slice": [None],
        },
    }
    (folder / "cfg.json").write_text(json.dumps(cfg, indent=2))
    return root


def build_hub(hf_home: Path) -> Path:
    """The whole fixture hub under ``hf_home``; returns ``hf_home``."""
    write_gpt2(hf_home)
    write_jb_release(hf_home)
    write_pythia(hf_home)
    write_proxy_release(hf_home)
    return hf_home


def configs_only(src: Path, dst: Path) -> Path:
    """A copy of the hub at ``src`` with every weights file left out."""
    shutil.copytree(
        src, dst, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"), dirs_exist_ok=True
    )
    return dst


@contextmanager
def hub_env(hf_home: Path, offline: bool = True) -> Iterator[None]:
    """While open, this process reads the hub cache under ``hf_home`` (offline by default):
    huggingface_hub reads its environment once, at import, so its constants are set too."""
    from huggingface_hub import constants

    names = {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1" if offline else "0"}
    consts = {
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_HUB_OFFLINE": offline,
    }
    saved_env = {k: os.environ.get(k) for k in names}
    saved = {k: getattr(constants, k) for k in consts}
    os.environ.update(names)
    for k, v in consts.items():
        setattr(constants, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(constants, k, v)
        for k, old in saved_env.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def sae_for_pythia(folder: Path, hf_home: Path, steps: int = 300) -> Path:
    """A ReLU SAE trained on pythia-14m's activations at ``PYTHIA_HOOK``, the model loaded
    without processing (SAELens' training default), saved in SAELens' format with its
    metadata."""
    import torch
    from safetensors.torch import save_file
    from transformer_lens import HookedTransformer

    with hub_env(hf_home):
        model = HookedTransformer.from_pretrained_no_processing(
            "EleutherAI/pythia-14m", device="cpu"
        )
    torch.manual_seed(3)
    texts = _text().splitlines()
    acts = []
    with torch.no_grad():
        for i in range(0, min(len(texts), 256), 16):
            tokens = model.to_tokens([t for t in texts[i : i + 16] if t.strip()], truncate=True)
            _, cache = model.run_with_cache(tokens[:, :64], names_filter=PYTHIA_HOOK)
            acts.append(cache[PYTHIA_HOOK].reshape(-1, model.cfg.d_model))
    x = torch.cat(acts)
    d_in, d_sae = model.cfg.d_model, 1024
    w_enc = torch.nn.Parameter(torch.randn(d_in, d_sae) / d_in**0.5)
    b_enc = torch.nn.Parameter(torch.zeros(d_sae))
    w_dec = torch.nn.Parameter(w_enc.detach().T.clone())
    b_dec = torch.nn.Parameter(x.mean(0).clone())
    opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=3e-3)
    for _ in range(steps):
        batch = x[torch.randint(0, len(x), (1024,))]
        f = torch.relu((batch - b_dec) @ w_enc + b_enc)
        loss = ((f @ w_dec + b_dec - batch) ** 2).sum(-1).mean() + 1e-3 * f.abs().sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous() for k, v in
         {"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec}.items()},
        str(folder / "sae_weights.safetensors"),
    )  # fmt: skip
    cfg = {
        "architecture": "standard",
        "d_in": d_in,
        "d_sae": d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": "6.5.1",
            "sae_lens_training_version": "6.5.1",
            "model_name": "EleutherAI/pythia-14m",
            "model_class_name": "HookedTransformer",
            "hook_name": PYTHIA_HOOK,
            "hook_head_index": None,
            "model_from_pretrained_kwargs": {},
            "prepend_bos": True,
            "context_size": 64,
            "dataset_path": "harness/toy-corpus",
            "exclude_special_tokens": False,
            "seqpos_slice": [None],
        },
    }
    (folder / "cfg.json").write_text(json.dumps(cfg, indent=2))
    return folder
