"""Checks of a real model and its SAEs from their configs alone, before any weights load
(Rule 1): the SAE was trained on this model, at a hook the model has, of the width the SAE reads;
the SAE's training metadata can be honoured; the model fits in memory. The result also carries
the loading rule, so the run loads the model exactly as checked.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.engine.checkpoints import (
    LoadRule,
    SAECard,
    hook_width,
    loading_rule,
    official_name,
    read_sae_card,
)
from harness.errors import BackendError, HarnessWarning, SpecError
from harness.spec import Experiment, PretrainedModel

__all__ = ["Preflight", "estimate_memory", "preflight", "read_model_config"]

BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
GENERATION_BUDGET = 1 << 30  # generation batches are sized to a 1 GiB budget (auto_batch_size)
GIB = float(1 << 30)


@dataclass(frozen=True)
class Preflight:
    """What the configs say: the SAEs' cards, the loading rule, the memory estimate."""

    rule: LoadRule
    cards: list[SAECard]
    prepend_bos: bool | None  # what the SAEs were trained with (None: they do not say)
    memory: dict[str, Any]
    revision: str | None = None  # the hub snapshot's commit, or a local folder's fingerprint

    def as_json(self) -> dict[str, Any]:
        """Provenance: the rule applied, each SAE's training metadata, the memory estimate."""
        return {
            "rule": self.rule.as_json(),
            "revision": self.revision,
            "prepend_bos": self.prepend_bos,
            "saes": {
                c.label: {"hook": c.hook, "dtype": c.dtype, **c.trained()} for c in self.cards
            },
            "memory": self.memory,
        }


def read_model_config(model: PretrainedModel) -> Any:
    """The model's TransformerLens config, from its ``config.json`` (a local folder's, or the
    hub's or its cache's); no weights are read."""
    import torch
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    from harness.engine.hub import ensure_cached, local_model_config

    official = official_name(model.name)
    dtype = getattr(torch, model.dtype)
    try:
        if model.path:
            folder = Path(model.path)
            if not (folder / "config.json").is_file():
                raise SpecError(
                    f"{model.path!r} is not a model folder (no config.json)", field="model.path"
                )
            if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
                raise SpecError(
                    f"{model.path!r} holds no weights (*.safetensors or *.bin)", field="model.path"
                )
            with local_model_config(official, str(folder)):
                return get_pretrained_model_config(official, dtype=dtype)
        ensure_cached(official, "config.json", f"model {model.name!r}", "model.name")
        return get_pretrained_model_config(official, dtype=dtype)
    except (SpecError, BackendError):
        raise
    except Exception as exc:  # the hub client raises many types; all mean "could not read"
        raise BackendError(
            f"model.name: could not read the config of {model.name!r}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc


def _available(device: str) -> tuple[float | None, str]:
    """Free bytes on ``device`` (None: unknown) and where that figure came from."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info()
        return float(free), "free CUDA memory"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024, "MemAvailable"
    except OSError:
        pass
    return None, "unknown"


def estimate_memory(cfg: Any, dtype: str, cards: list[SAECard], device: str) -> dict[str, Any]:
    """Bytes the run needs on ``device``: the weights (twice on the CPU while loading: the
    Hugging Face model and the HookedTransformer exist at once), the SAEs, and the generation
    budget (KV cache, activations, logits)."""
    embed = cfg.d_vocab * cfg.d_model * (1 if getattr(cfg, "tied_embeddings", False) else 2)
    if cfg.positional_embedding_type in ("standard", "shortformer"):
        embed += cfg.n_ctx * cfg.d_model
    weights = float((cfg.n_params + embed) * BYTES[dtype])
    saes = float(
        sum((2 * c.d_in * c.d_sae + c.d_sae + c.d_in) * BYTES.get(c.dtype, 4) for c in cards)
    )
    on_gpu = device.startswith("cuda")
    need = (weights if on_gpu else 2 * weights) + saes + GENERATION_BUDGET
    free, source = _available(device)
    return {
        "device": device,
        "parameters": int(cfg.n_params + embed),
        "weights_bytes": weights,
        "sae_bytes": saes,
        "generation_budget_bytes": float(GENERATION_BUDGET),
        "needed_bytes": need,
        "free_bytes": free,
        "free_source": source,
        "loading_peak": "1 × weights" if on_gpu else "2 × weights",
    }


def _check_memory(model: PretrainedModel, memory: dict[str, Any]) -> None:
    free, need = memory["free_bytes"], memory["needed_bytes"]
    if free is None or need <= free or os.environ.get("HARNESS_SKIP_MEMORY_CHECK") == "1":
        return
    raise SpecError(
        f"{model.name} in {model.dtype} needs about {need / GIB:.1f} GiB on "
        f"{memory['device']} ({memory['loading_peak']} of {memory['weights_bytes'] / GIB:.1f} "
        f"GiB while loading, SAEs {memory['sae_bytes'] / GIB:.2f} GiB, generation "
        f"{memory['generation_budget_bytes'] / GIB:.1f} GiB) but {free / GIB:.1f} GiB is free "
        f"({memory['free_source']}); use a smaller dtype, a GPU or a smaller model "
        "(HARNESS_SKIP_MEMORY_CHECK=1 skips this check)",
        field="model.dtype",
    )


def _check_card(exp: Experiment, model: PretrainedModel, card: SAECard, cfg: Any) -> None:
    trained_on = card.metadata.get("model_name")
    if trained_on and official_name(str(trained_on)) != official_name(model.name):
        raise SpecError(
            f"SAE {card.label!r} was trained on {trained_on!r} but the spec's model is "
            f"{model.name!r} ({official_name(model.name)!r})",
            field=card.field,
        )
    head = card.metadata.get("hook_head_index")
    if head is not None:
        raise SpecError(
            f"SAE {card.label!r} reads one attention head (hook_head_index={head}); the "
            "harness's interventions read whole hook points only",
            field=f"{card.field}.hook_head_index",
        )
    sliced = card.metadata.get("seqpos_slice")
    if sliced not in (None, [None], (None,), [None, None], (None, None)):
        raise SpecError(
            f"SAE {card.label!r} was trained on the token positions seqpos_slice={sliced}; the "
            "harness measures and steers every position",
            field=f"{card.field}.seqpos_slice",
        )
    try:
        width = hook_width(cfg, card.hook, None)
    except ValueError as exc:
        raise SpecError(
            f"SAE {card.label!r} reads hook point {card.hook!r}, which {model.name} does not "
            f"have ({exc})",
            field=f"{card.field}.hook",
        ) from None
    if width is not None and width != card.d_in:
        raise SpecError(
            f"SAE {card.label!r} has d_in={card.d_in} but {model.name} is {width} wide at "
            f"{card.hook!r}",
            field=card.field,
        )
    trained_hook = card.metadata.get("hook_name")
    if trained_hook and trained_hook != card.hook and not _same_stream(card.hook, trained_hook):
        warnings.warn(
            f"SAE {card.label!r} was trained at {trained_hook!r} but reads {card.hook!r}; the "
            "fit gate will tell whether it still fits",
            HarnessWarning,
            stacklevel=3,
        )
    context = card.metadata.get("context_size")
    if context and exp.generation.max_new_tokens > int(context):
        warnings.warn(
            f"SAE {card.label!r} was trained on contexts of {context} tokens; "
            f"max_new_tokens={exp.generation.max_new_tokens} generates past them",
            HarnessWarning,
            stacklevel=3,
        )


def _same_stream(a: str, b: str) -> bool:
    """Whether hooks ``a`` and ``b`` see the same activations (``blocks.L.hook_resid_post`` is
    ``blocks.L+1.hook_resid_pre``)."""

    def canon(hook: str) -> str:
        parts = hook.split(".")
        if len(parts) == 3 and parts[2] == "hook_resid_post" and parts[1].isdigit():
            return f"blocks.{int(parts[1]) + 1}.hook_resid_pre"
        return hook

    return canon(a) == canon(b)


def _prepend_bos(cards: list[SAECard]) -> bool | None:
    said = {c.label: c.metadata.get("prepend_bos") for c in cards}
    values = {bool(v) for v in said.values() if v is not None}
    if len(values) > 1:
        raise SpecError(
            f"the SAEs disagree on prepend_bos ({said}): each was trained with its own; put "
            "them in separate specs",
            field="saes",
        )
    return values.pop() if values else None


def _revision(exp: Experiment) -> str | None:
    """What identifies the model's weights: the cached snapshot's commit for a hub name (None
    when the hub serves it and nothing is cached yet), the folder's fingerprint for a path."""
    from harness.engine.hub import cached_revision
    from harness.store.files import local_weights_fingerprint

    model = exp.model
    assert isinstance(model, PretrainedModel)
    if model.path:
        only_model = exp.model_copy(update={"saes": ()})
        return "local:" + local_weights_fingerprint(only_model)[:16]
    return cached_revision(official_name(model.name))


_CACHE: dict[str, Preflight] = {}


def preflight(exp: Experiment, device: str | None = None) -> Preflight:
    """Every config-level check of ``exp``'s real model and SAEs (SpecError, or BackendError
    when a config cannot be read); the same spec is read once per process."""
    model = exp.model
    assert isinstance(model, PretrainedModel)
    from harness.engine.backend import resolve_device

    where = resolve_device(device or model.device)
    key = json.dumps([exp.model_dump(mode="json"), where], sort_keys=True)
    if key in _CACHE:
        return _CACHE[key]
    cfg = read_model_config(model)
    cards = [read_sae_card(ref, i) for i, ref in enumerate(exp.saes)]
    rule = loading_rule(model, cards)
    for card in cards:
        _check_card(exp, model, card, cfg)
    if exp.generation.max_new_tokens >= cfg.n_ctx:
        raise SpecError(
            f"max_new_tokens={exp.generation.max_new_tokens} does not fit {model.name}'s context "
            f"of {cfg.n_ctx} tokens",
            field="generation.max_new_tokens",
        )
    memory = estimate_memory(cfg, model.dtype, cards, where)
    _check_memory(model, memory)
    found = Preflight(rule, cards, _prepend_bos(cards), memory, _revision(exp))
    _CACHE[key] = found
    return found
