"""Loading models and SAEs: the one module that loads TransformerLens and SAELens objects.

(The toy world's builder also uses both libraries to train; everything at run time goes through
here.) Real models load with ``HookedTransformer.from_pretrained`` and ``SAE.from_pretrained``; when
the hub is unreachable they fail fast with a :class:`BackendError` instead of retrying for minutes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, cast

import torch
from sae_lens import SAE
from safetensors.torch import load_file
from transformer_lens import HookedTransformer, HookedTransformerConfig

from harness.engine.checkpoints import LoadRule
from harness.engine.hub import hub_reachable
from harness.errors import BackendError
from harness.spec import LocalSAE, ModelRef, PretrainedModel, PretrainedSAE, SAERef, ToySAE
from harness.toy.tokenizer import load_tokenizer
from harness.toy.world import ASSETS, toy_sae_dir, toy_sae_names

__all__ = [
    "LoadedSAE",
    "load_hub_documents",
    "load_model",
    "load_sae",
    "neuronpedia_id",
    "resolve_device",
]

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
    from harness.engine.hub import hub_offline

    return hub_offline()


def load_model(
    ref: ModelRef, device: str = "cpu", assets: Path = ASSETS, rule: LoadRule | None = None
) -> HookedTransformer:
    """Load the model a spec names, in eval mode on ``device``; a real model by ``rule`` (the
    loading rule its SAEs ask for: :func:`harness.engine.checkpoints.loading_rule`; SAELens'
    default, no processing, when None)."""
    if isinstance(ref, PretrainedModel):
        return _load_pretrained_model(ref, device, rule or LoadRule(NO_PROCESSING, {}, "default"))
    cfg_dict = json.loads((assets / "model" / "config.json").read_text())
    cfg = HookedTransformerConfig(**cfg_dict, device=device)
    model = HookedTransformer(cfg, tokenizer=load_tokenizer(assets / "tokenizer.json"))
    state = load_file(str(assets / "model" / "model.safetensors"), device=device)
    model.load_state_dict(state)
    model.eval()
    return model


NO_PROCESSING = "from_pretrained_no_processing"


def _load_pretrained_model(ref: PretrainedModel, device: str, rule: LoadRule) -> HookedTransformer:
    from harness.engine.checkpoints import official_name
    from harness.engine.hub import ensure_cached, local_model_config

    dtype = getattr(torch, ref.dtype)
    official = official_name(ref.name)
    method = getattr(HookedTransformer, rule.method)
    try:
        if ref.path:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            hf_model = AutoModelForCausalLM.from_pretrained(ref.path, dtype=dtype)
            tokenizer = AutoTokenizer.from_pretrained(ref.path)
            with local_model_config(official, ref.path):
                model = method(
                    official,
                    hf_model=hf_model,
                    tokenizer=tokenizer,
                    device=device,
                    dtype=dtype,
                    **rule.kwargs,
                )
            del hf_model
        else:
            ensure_cached(official, "config.json", f"model {ref.name!r}", "model.name")
            model = method(official, device=device, dtype=dtype, **rule.kwargs)
    except BackendError:
        raise
    except Exception as exc:  # the hub client raises many types; all mean "could not load"
        hint = " (HF_HUB_OFFLINE is set)" if _hub_offline() else ""
        where = f" from {ref.path!r}" if ref.path else ""
        raise BackendError(
            f"model.name: could not load pretrained model {ref.name!r}{where}{hint}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc
    model.eval()
    return cast(HookedTransformer, model)


def load_sae(ref: SAERef, label: str, device: str = "cpu", assets: Path = ASSETS) -> LoadedSAE:
    """Load one SAE and the hook point it was trained on."""
    import warnings

    try:
        with warnings.catch_warnings():
            # SAELens warns that the model should be loaded by the SAE's metadata: the harness
            # does so (engine/checkpoints.loading_rule), and records the rule in provenance
            warnings.filterwarnings("ignore", message=r"\s*This SAE has non-empty model_from_pre")
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
    hook = ref.hook or sae.cfg.metadata.hook_name
    if not hook:
        raise BackendError(f"saes: SAE {label!r} does not say which hook point it reads")
    sae.eval()
    return LoadedSAE(label=label, sae=sae, hook_name=str(hook))


def neuronpedia_id(ref: SAERef) -> str | None:
    """The Neuronpedia id of a SAELens release SAE, when SAELens knows one."""
    if not isinstance(ref, PretrainedSAE):
        return None
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    lookup = get_pretrained_saes_directory().get(ref.release)
    found = lookup.neuronpedia_id.get(ref.sae_id) if lookup and lookup.neuronpedia_id else None
    return str(found) if found else None


def _load_release_sae(ref: PretrainedSAE, device: str) -> AnySAE:
    from harness.engine.hub import ensure_release_cached

    ensure_release_cached(ref.release, ref.sae_id, "saes")
    try:
        return cast(AnySAE, SAE.from_pretrained(ref.release, ref.sae_id, device=device))
    except Exception as exc:
        hint = " (HF_HUB_OFFLINE is set)" if _hub_offline() else ""
        raise BackendError(
            f"saes: could not load SAELens release {ref.release!r} / {ref.sae_id!r}{hint}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc


def load_hub_documents(path: str, split: str, text_field: str, n: int, field: str) -> list[str]:
    """The first ``n`` texts of a Hugging Face dataset split, streamed; fails fast offline."""
    if _hub_offline() or not hub_reachable():
        raise BackendError(
            f"{field}: cannot stream dataset {path!r}: the Hugging Face hub is unreachable "
            "(use a local text/JSONL file: stats_corpus=PromptFile(path=...))"
        )
    try:
        from datasets import load_dataset

        rows = load_dataset(path, split=split, streaming=True)
        docs = []
        for row in rows:
            docs.append(str(row[text_field]))
            if len(docs) >= n:
                break
    except Exception as exc:
        raise BackendError(
            f"{field}: could not read dataset {path!r} split {split!r} field {text_field!r}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc
    if not docs:
        raise BackendError(f"{field}: dataset {path!r} split {split!r} has no rows")
    return docs
