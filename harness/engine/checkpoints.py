"""What a real checkpoint says about itself, read from its config files alone (no weights): the
SAE's SAELens config and metadata, the model's TransformerLens config, and the rule that loads
the model the way its SAEs were trained.

The loading rule is SAELens' own (``sae_lens.load_model.load_model``, used by its evals and its
training runner): a ``HookedTransformer`` model is loaded with
``HookedTransformer.from_pretrained_no_processing(model_name, **model_from_pretrained_kwargs)``,
the kwargs taken from the SAE's metadata (a release's ``config_overrides`` applied first, as
``SAE.from_pretrained`` does). A spec can override it (``PretrainedModel(processing=...)``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BackendError, SpecError
from harness.spec import LocalSAE, PretrainedModel, PretrainedSAE, SAERef, ToySAE, sae_label

__all__ = [
    "LoadRule",
    "SAECard",
    "hook_width",
    "loading_rule",
    "official_name",
    "read_sae_card",
]

# the metadata fields SAELens keeps with an SAE about how it was trained
METADATA_FIELDS = (
    "model_name",
    "model_class_name",
    "hook_name",
    "hook_head_index",
    "model_from_pretrained_kwargs",
    "prepend_bos",
    "context_size",
    "dataset_path",
    "exclude_special_tokens",
    "seqpos_slice",
)


@dataclass(frozen=True)
class SAECard:
    """One SAE's config as SAELens would load it: shapes, dtype, hook and training metadata."""

    field: str  # the spec field, e.g. "saes.0"
    label: str
    d_in: int
    d_sae: int
    dtype: str
    hook: str  # the hook point the harness uses (the spec's override, else the SAE's own)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def trained(self) -> dict[str, Any]:
        """The metadata fields about training that the SAE states (None values left out)."""
        return {k: self.metadata[k] for k in METADATA_FIELDS if self.metadata.get(k) is not None}


def _card(ref: SAERef, i: int, cfg: dict[str, Any], defaulted: bool = False) -> SAECard:
    from sae_lens.loading.pretrained_sae_loaders import handle_config_defaulting

    if not defaulted:  # a config file as written, of any SAELens version
        cfg = handle_config_defaulting(dict(cfg))
    meta = dict(cfg.get("metadata") or {})
    for key in METADATA_FIELDS:  # older configs keep some of them at the top level
        if key not in meta and key in cfg:
            meta[key] = cfg[key]
    hook = ref.hook or meta.get("hook_name")
    if not hook:
        raise SpecError(
            f"SAE {sae_label(ref)!r} does not say which hook point it reads; set hook=...",
            field=f"saes.{i}.hook",
        )
    return SAECard(
        field=f"saes.{i}",
        label=sae_label(ref),
        d_in=int(cfg["d_in"]),
        d_sae=int(cfg["d_sae"]),
        dtype=str(cfg.get("dtype", "float32")).removeprefix("torch."),
        hook=str(hook),
        metadata=meta,
    )


def read_sae_card(ref: SAERef, i: int) -> SAECard:
    """The config of SAE ``i`` of a spec: for a release, its ``cfg.json`` from the local
    Hugging Face cache or the hub (no weights); :class:`BackendError` in seconds when neither
    has it."""
    from harness.engine.hub import ensure_release_cached

    if isinstance(ref, ToySAE):
        from harness.toy.world import toy_sae_dir

        return _card(ref, i, json.loads((toy_sae_dir(ref.name) / "cfg.json").read_text()))
    if isinstance(ref, LocalSAE):
        return _card(ref, i, json.loads((Path(ref.path) / "cfg.json").read_text()))
    assert isinstance(ref, PretrainedSAE)
    from sae_lens.loading.pretrained_sae_loaders import load_sae_config_from_huggingface

    ensure_release_cached(ref.release, ref.sae_id, f"saes.{i}")
    try:
        cfg = load_sae_config_from_huggingface(ref.release, ref.sae_id, device="cpu")
    except Exception as exc:  # the hub client raises many types; all mean "could not read"
        raise BackendError(
            f"saes.{i}: could not read the config of {ref.release!r} / {ref.sae_id!r}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc
    return _card(ref, i, cfg, defaulted=True)


def official_name(name: str) -> str:
    """A model name as TransformerLens resolves it (aliases such as ``gpt2-small`` → ``gpt2``);
    a name it does not know is returned as given."""
    from transformer_lens.loading_from_pretrained import get_official_model_name

    try:
        return str(get_official_model_name(name))
    except ValueError:
        return name


@dataclass(frozen=True)
class LoadRule:
    """How the model is loaded: TransformerLens' method, its keyword arguments, and why."""

    method: str  # "from_pretrained" or "from_pretrained_no_processing"
    kwargs: dict[str, Any]
    reason: str

    def as_json(self) -> dict[str, Any]:
        """The rule as provenance records it."""
        return {"method": self.method, "kwargs": dict(self.kwargs), "reason": self.reason}

    def describe(self) -> str:
        """One line: ``from_pretrained_no_processing(center_writing_weights=True)`` and why."""
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.kwargs.items()))
        return f"HookedTransformer.{self.method}({args}) — {self.reason}"


_SPEC_OWNED = {"device", "dtype", "torch_dtype"}  # the spec and --device decide these


def loading_rule(model: PretrainedModel, cards: list[SAECard]) -> LoadRule:
    """The loading rule for ``model`` and its SAEs (SpecError when it cannot be applied)."""
    for card in cards:
        cls = card.metadata.get("model_class_name")
        if cls not in (None, "HookedTransformer"):
            raise SpecError(
                f"SAE {card.label!r} was trained on a {cls!r} model (SAELens loads it with "
                f"{'HookedProxyLM' if cls == 'AutoModelForCausalLM' else cls}); the harness "
                "intervenes on HookedTransformer models only",
                field=f"{card.field}.model_class_name",
            )
    if model.processing == "default":
        return LoadRule("from_pretrained", {}, "spec: processing='default'")
    if model.processing == "no_processing":
        return LoadRule("from_pretrained_no_processing", {}, "spec: processing='no_processing'")
    if isinstance(model.processing, dict):
        return LoadRule(
            "from_pretrained_no_processing", dict(model.processing), "spec: processing={...}"
        )
    wanted: dict[str, tuple[str, dict[str, Any]]] = {}
    for card in cards:
        kwargs = {
            k: v
            for k, v in (card.metadata.get("model_from_pretrained_kwargs") or {}).items()
            if k not in _SPEC_OWNED
        }
        wanted.setdefault(json.dumps(kwargs, sort_keys=True), (card.label, kwargs))
    if len(wanted) > 1:
        (a, ka), (b, kb) = list(wanted.values())[:2]
        raise SpecError(
            f"SAEs {a!r} and {b!r} were trained on differently processed models ({ka} vs {kb}); "
            "put them in separate specs, or set PretrainedModel(processing=...) to choose one",
            field="model.processing",
        )
    label, kwargs = next(iter(wanted.values()), ("", {}))
    reason = (
        f"as trained: SAELens metadata of {label!r} (model_from_pretrained_kwargs={kwargs})"
        if cards
        else "no SAE metadata: SAELens' default"
    )
    return LoadRule("from_pretrained_no_processing", kwargs, reason)


_D_MODEL = {
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "hook_attn_in",
    "hook_q_input",
    "hook_k_input",
    "hook_v_input",
    "hook_mlp_in",
    "hook_attn_out",
    "hook_mlp_out",
    "ln1.hook_normalized",
    "ln2.hook_normalized",
}
_HEADS = {"attn.hook_q", "attn.hook_z", "attn.hook_result", "attn.hook_rot_q"}
_KV_HEADS = {"attn.hook_k", "attn.hook_v", "attn.hook_rot_k"}
_MLP = {"mlp.hook_pre", "mlp.hook_post", "mlp.hook_pre_linear"}
_OTHER = {"attn.hook_attn_scores", "attn.hook_pattern", "ln1.hook_scale", "ln2.hook_scale"}
_TOP = {"hook_embed": True, "hook_pos_embed": True, "ln_final.hook_normalized": True}


def hook_width(cfg: Any, hook: str, head_index: int | None) -> int | None:
    """The width an SAE reads at ``hook`` of a model with TransformerLens config ``cfg`` (heads
    flattened, as SAELens reads them; one head's width with ``head_index``); None where the
    hook has no fixed width (attention patterns). ValueError naming the valid hooks when the
    model has no such hook point."""
    if hook in _TOP:
        return int(cfg.d_model)
    parts = hook.split(".", 2)
    valid = sorted(_D_MODEL | _HEADS | _KV_HEADS | _MLP | _OTHER)
    if len(parts) != 3 or parts[0] != "blocks" or not parts[1].isdigit():
        raise ValueError(f"valid: blocks.<layer>.<hook> with a hook in {valid}, or {list(_TOP)}")
    layer, rest = int(parts[1]), parts[2]
    if layer >= cfg.n_layers:
        raise ValueError(f"the model has {cfg.n_layers} layers (valid: 0..{cfg.n_layers - 1})")
    if rest == "hook_resid_mid" and getattr(cfg, "parallel_attn_mlp", False):
        raise ValueError("the model runs attention and MLP in parallel: it has no hook_resid_mid")
    if rest in _D_MODEL:
        return int(cfg.d_model)
    if rest in _HEADS | _KV_HEADS:
        heads = cfg.n_heads if rest in _HEADS else (cfg.n_key_value_heads or cfg.n_heads)
        if head_index is not None:
            if head_index >= heads:
                raise ValueError(f"hook_head_index {head_index} ≥ the model's {heads} heads")
            return int(cfg.d_head)
        return int(heads * cfg.d_head)
    if rest in _MLP:
        return int(cfg.d_mlp) if cfg.d_mlp else None
    if rest in _OTHER:
        return None
    raise ValueError(f"valid hooks in a block: {valid}")
