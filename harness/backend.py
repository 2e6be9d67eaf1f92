"""Loading models and SAEs: the one module that loads TransformerLens and SAELens objects.

(The toy world's builder also uses both libraries to train; everything at run time goes through
here.) Real models load with ``HookedTransformer.from_pretrained`` and ``SAE.from_pretrained``; when
the hub is unreachable they fail fast with a :class:`BackendError` instead of retrying for minutes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, cast

import torch
from sae_lens import SAE
from safetensors.torch import load_file
from transformer_lens import HookedTransformer, HookedTransformerConfig

from harness.errors import BackendError
from harness.spec import LocalSAE, ModelRef, PretrainedModel, PretrainedSAE, SAERef, ToySAE
from harness.toy.tokenizer import load_tokenizer
from harness.toy.world import ASSETS, toy_sae_dir, toy_sae_names

__all__ = ["LoadedSAE", "load_model", "load_sae", "resolve_device"]

AnySAE: TypeAlias = SAE[Any]


@dataclass(frozen=True)
class LoadedSAE:
    """An SAE with the hook point it reads and writes."""

    label: str
    sae: AnySAE
    hook_name: str

    @property
    def d_sae(self) -> int:
        """Number of features."""
        return int(self.sae.cfg.d_sae)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations of ``x`` (cast to the SAE's dtype), returned as float32."""
        return cast(torch.Tensor, self.sae.encode(x.to(self.sae.dtype))).float()

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction from feature activations, returned as float32."""
        return cast(torch.Tensor, self.sae.decode(f.to(self.sae.dtype))).float()


def resolve_device(preference: str = "auto") -> str:
    """``auto`` → cuda if available, then mps, then cpu; an explicit device must be available."""
    if preference == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise BackendError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu")
    return preference


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def load_model(ref: ModelRef, device: str = "cpu", assets: Path = ASSETS) -> HookedTransformer:
    """Load the model a spec names, in eval mode on ``device``."""
    if isinstance(ref, PretrainedModel):
        return _load_pretrained_model(ref, device)
    cfg_dict = json.loads((assets / "model" / "config.json").read_text())
    cfg = HookedTransformerConfig(**cfg_dict, device=device)
    model = HookedTransformer(cfg, tokenizer=load_tokenizer(assets / "tokenizer.json"))
    state = load_file(str(assets / "model" / "model.safetensors"), device=device)
    model.load_state_dict(state)
    model.eval()
    return model


def _load_pretrained_model(ref: PretrainedModel, device: str) -> HookedTransformer:
    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    try:
        model = HookedTransformer.from_pretrained(ref.name, device=device, dtype=dtype[ref.dtype])
    except Exception as exc:  # the hub client raises many types; all mean "could not load"
        hint = " (HF_HUB_OFFLINE is set)" if _hub_offline() else ""
        raise BackendError(
            f"model.name: could not load pretrained model {ref.name!r}{hint}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc
    model.eval()
    return model


def load_sae(ref: SAERef, label: str, device: str = "cpu", assets: Path = ASSETS) -> LoadedSAE:
    """Load one SAE and the hook point it was trained on."""
    try:
        if isinstance(ref, ToySAE):
            names = toy_sae_names(assets)
            if ref.name not in names:
                raise BackendError(f"saes: unknown toy SAE {ref.name!r}; valid: {names}")
            sae = SAE.load_from_disk(toy_sae_dir(ref.name, assets), device=device)
        elif isinstance(ref, LocalSAE):
            path = Path(ref.path)
            if not (path / "cfg.json").is_file():
                raise BackendError(f"saes: {ref.path!r} holds no SAELens cfg.json")
            sae = SAE.load_from_disk(path, device=device)
        else:
            sae = _load_release_sae(ref, device)
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(
            f"saes: could not load SAE {label!r}: {type(exc).__name__}: {exc}"
        ) from exc
    hook = sae.cfg.metadata.hook_name
    if not hook:
        raise BackendError(f"saes: SAE {label!r} does not say which hook point it reads")
    sae.eval()
    return LoadedSAE(label=label, sae=sae, hook_name=str(hook))


def _load_release_sae(ref: PretrainedSAE, device: str) -> AnySAE:
    try:
        return cast(AnySAE, SAE.from_pretrained(ref.release, ref.sae_id, device=device))
    except Exception as exc:
        hint = " (HF_HUB_OFFLINE is set)" if _hub_offline() else ""
        raise BackendError(
            f"saes: could not load SAELens release {ref.release!r} / {ref.sae_id!r}{hint}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc
