"""Rule 1: every error a spec can contain, found before compute (DESIGN §4).

:func:`validate_static` runs before any model is loaded: it reads only small config files (the toy
world's, SAELens' release directory, TransformerLens' model list). :func:`validate_loaded` runs
right after the model and SAEs are loaded and before the first generation. Each error is a
:class:`SpecError` naming the field path, the bad value and the valid options.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from harness.errors import SpecError
from harness.judge.offline import OFFLINE_RUBRICS
from harness.judge.rubric import available_rubrics, is_rubric_path, load_rubric
from harness.spec import (
    Experiment,
    FeatureByIndex,
    FeatureByMatch,
    FeatureRef,
    LocalSAE,
    PretrainedModel,
    PretrainedSAE,
    PromptFile,
    ToyModel,
    ToySAE,
    sae_label,
)
from harness.spec.sources import located
from harness.spec.toy_words import check_toy_words
from harness.studies.registry import kind_of
from harness.toy.world import ASSETS, toy_sae_dir, toy_sae_names

__all__ = ["study_features", "toy_hook_names", "validate_loaded", "validate_static"]

# Generating past the toy model's context would index positional embeddings out of range.
_RESID = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out")


def _close(value: str, options: Sequence[str]) -> str:
    near = difflib.get_close_matches(value, options, n=3)
    return f"; did you mean {near}?" if near else ""


def toy_hook_names() -> list[str]:
    """Hook points of the toy model an SAE can sit on (residual stream and block outputs)."""
    n_layers = json.loads((ASSETS / "model" / "config.json").read_text())["n_layers"]
    return [f"blocks.{i}.{h}" for i in range(n_layers) for h in _RESID]


def study_features(exp: Experiment) -> Iterator[tuple[str, FeatureRef]]:
    """Every feature reference in the spec with its field path."""
    for i, study in enumerate(exp.studies):
        for sub, ref in kind_of(study).features(study):
            yield f"studies.{i}.{sub}", ref


def _check_prompt_lengths(exp: Experiment) -> None:
    from harness.toy.tokenizer import load_tokenizer

    n_ctx = json.loads((ASSETS / "model" / "config.json").read_text())["n_ctx"]
    tok = load_tokenizer(ASSETS / "tokenizer.json")
    budget = exp.generation.max_new_tokens
    if budget >= n_ctx:
        raise SpecError(
            f"max_new_tokens={budget} does not fit the toy model's context of {n_ctx} tokens "
            f"(valid: 1..{n_ctx - 2} minus the prompt length)",
            field="generation.max_new_tokens",
        )
    for i, study in enumerate(exp.studies):
        for name, prompts in kind_of(study).prompt_sets(study):
            if isinstance(prompts, PromptFile):
                continue
            for j, prompt in enumerate(prompts):
                length = len(tok.encode(prompt))  # includes BOS
                if length + budget > n_ctx:
                    raise SpecError(
                        f"prompt of {length} tokens + max_new_tokens={budget} exceeds the toy "
                        f"model's context of {n_ctx}",
                        field=f"studies.{i}.{name}.{j}",
                    )
    check_positions_fit(exp, lambda prompt: len(tok.encode(prompt)) - 1)


def check_positions_fit(exp: Experiment, count: Callable[[str], int]) -> None:
    """Explicit intervention positions (a study's ``positions`` tuple) must fall inside every
    prompt they apply to; ``count`` gives a prompt's tokens after BOS."""
    for i, study in enumerate(exp.studies):
        positions = getattr(study, "positions", None)
        if not isinstance(positions, tuple):
            continue
        for name, prompts in kind_of(study).prompt_sets(study):
            if isinstance(prompts, PromptFile):
                continue
            for j, prompt in enumerate(prompts):
                n = count(prompt)
                if max(positions) >= n:
                    raise SpecError(
                        f"position {max(positions)} is past the end of {name}[{j}] ({n} tokens "
                        f"after BOS; valid positions: 0..{n - 1})",
                        field=f"studies.{i}.positions",
                    )


def _toy_sae_cfg(name: str) -> dict[str, Any]:
    cfg: dict[str, Any] = json.loads((toy_sae_dir(name) / "cfg.json").read_text())
    return cfg


def _check_saes(exp: Experiment) -> dict[str, int]:
    """Check SAE references; returns d_sae per label where it is known before loading."""
    shipped = toy_sae_names()
    d_sae: dict[str, int] = {}
    model_width = None
    if isinstance(exp.model, ToyModel):
        model_width = json.loads((ASSETS / "model" / "config.json").read_text())["d_model"]
    for i, ref in enumerate(exp.saes):
        label = sae_label(ref)
        cfg: dict[str, Any] | None = None
        if isinstance(ref, ToySAE):
            if ref.name not in shipped:
                raise SpecError(
                    f"unknown toy SAE {ref.name!r}; valid: {shipped}", field=f"saes.{i}.name"
                )
            cfg = _toy_sae_cfg(ref.name)
        elif isinstance(ref, LocalSAE):
            cfg = _local_sae_cfg(ref.path, ref.hook, f"saes.{i}")
        else:
            _check_release(ref, i)
        if cfg is not None:
            d_sae[label] = int(cfg["d_sae"])
            if model_width is not None and int(cfg["d_in"]) != model_width:
                raise SpecError(
                    f"SAE {label!r} has d_in={cfg['d_in']} but the model's width is {model_width}",
                    field=f"saes.{i}",
                )
        if ref.hook is not None and isinstance(exp.model, ToyModel):
            valid = toy_hook_names()
            if ref.hook not in valid:
                raise SpecError(
                    f"unknown hook point {ref.hook!r}; valid: {valid}", field=f"saes.{i}.hook"
                )
    return d_sae


_ARCHITECTURES = ("standard", "gated", "jumprelu", "topk", "batchtopk", "matryoshka_batchtopk")
_DTYPES = ("float32", "float16", "bfloat16", "float64")


def _local_sae_cfg(folder: str, hook: str | None, field: str) -> dict[str, Any]:
    """A local SAE folder's cfg.json, checked field by field before anything loads."""
    from pathlib import Path

    path = Path(folder)
    cfg_path = path / "cfg.json"
    if not cfg_path.is_file():
        raise SpecError(
            f"{folder!r} is not a directory with an SAELens cfg.json", field=f"{field}.path"
        )
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{cfg_path} is not valid JSON ({exc})", field=f"{field}.path") from None
    if not isinstance(cfg, dict):
        raise SpecError(f"{cfg_path} holds no JSON object", field=f"{field}.path")
    for name in ("d_in", "d_sae"):
        value = cfg.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise SpecError(
                f"{cfg_path}: {name!r} must be a positive integer (got {value!r})",
                field=f"{field}.path",
            )
    arch = cfg.get("architecture", "standard")
    if arch not in _ARCHITECTURES:
        raise SpecError(
            f"{cfg_path}: unknown architecture {arch!r}; valid: {list(_ARCHITECTURES)}",
            field=f"{field}.path",
        )
    if cfg.get("dtype", "float32") not in _DTYPES:
        raise SpecError(
            f"{cfg_path}: unknown dtype {cfg.get('dtype')!r}; valid: {list(_DTYPES)}",
            field=f"{field}.path",
        )
    raw_metadata = cfg.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    if not (hook or metadata.get("hook_name") or cfg.get("hook_name")):
        raise SpecError(
            f"{cfg_path} names no hook point (metadata.hook_name); set hook=... on the SAE",
            field=f"{field}.hook",
        )
    if not any(path.glob("*.safetensors")):
        raise SpecError(f"{folder!r} holds no weights (*.safetensors)", field=f"{field}.path")
    return cfg


_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def _check_release(ref: PretrainedSAE, i: int) -> None:
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if ref.release not in directory:
        if _REPO_ID.fullmatch(ref.release):
            return  # a Hugging Face repository of SAELens-format SAEs: sae_id is its folder
        raise SpecError(
            f"unknown SAELens release {ref.release!r}{_close(ref.release, list(directory))} "
            f"(the list is sae_lens/pretrained_saes.yaml; a Hugging Face repository id "
            f"'owner/name' names a repository of SAELens-format SAE folders)",
            field=f"saes.{i}.release",
        )
    ids = list(directory[ref.release].saes_map)
    if ref.sae_id not in ids:
        shown = ids if len(ids) <= 12 else [*ids[:12], "…"]
        raise SpecError(
            f"release {ref.release!r} has no SAE {ref.sae_id!r}; valid: {shown}",
            field=f"saes.{i}.sae_id",
        )


def _check_pretrained_model(ref: PretrainedModel) -> None:
    from transformer_lens import loading_from_pretrained as tl_loading

    official: list[str] = list(tl_loading.OFFICIAL_MODEL_NAMES)  # type: ignore[attr-defined]
    aliases = tl_loading.make_model_alias_map()
    if ref.name.lower() not in aliases and ref.name not in official:
        raise SpecError(
            f"TransformerLens does not know the model {ref.name!r}{_close(ref.name, official)}",
            field="model.name",
        )


def validate_static(exp: Experiment) -> None:
    """Every check possible before a model is loaded; raises :class:`SpecError`, with the
    spec's file:line where the field was set when the spec came from a file."""
    with located(exp):
        _validate_static(exp)


def _validate_static(exp: Experiment) -> None:
    for path, name in [("judge.rubric", exp.judge.rubric)] + [
        (f"judge.extra_rubrics.{i}", r) for i, r in enumerate(exp.judge.extra_rubrics)
    ]:
        if is_rubric_path(name):
            try:
                rubric_name = load_rubric(name).name
            except SpecError as exc:
                raise SpecError(str(exc).removeprefix("judge.rubric: "), field=path) from None
            if exp.judge.is_offline() and rubric_name not in OFFLINE_RUBRICS:
                raise SpecError(
                    f"the offline judge has no rules for rubric {rubric_name!r} (valid: "
                    f"{list(OFFLINE_RUBRICS)}); judge it with the Anthropic judge",
                    field=path,
                )
        elif name not in available_rubrics():
            raise SpecError(
                f"unknown rubric {name!r}; valid: {available_rubrics()} or a path to a rubric "
                "file (.txt)",
                field=path,
            )
    if exp.judge.kind == "anthropic" and not os.environ.get("ANTHROPIC_API_KEY"):
        raise SpecError(
            "the Anthropic judge needs ANTHROPIC_API_KEY in the environment; set it, or use "
            "kind='auto' (Anthropic when a key is set, else offline) or kind='offline'",
            field="judge.kind",
        )
    if isinstance(exp.model, PretrainedModel):
        _check_pretrained_model(exp.model)
    else:
        _check_prompt_lengths(exp)
    d_sae = _check_saes(exp)
    if isinstance(exp.model, PretrainedModel):  # the configs of the real model and its SAEs
        from harness.engine.preflight import preflight

        preflight(exp)
    labels = [sae_label(s) for s in exp.saes]
    for path, ref in study_features(exp):
        if isinstance(ref, FeatureByIndex):
            for label, width in d_sae.items():
                if ref.index >= width:
                    raise SpecError(
                        f"feature index {ref.index} is out of range for SAE {label!r} "
                        f"(d_sae={width}; valid: 0..{width - 1})",
                        field=f"{path}.index",
                    )
        if isinstance(ref, FeatureByMatch):
            if ref.reference_sae not in labels:
                raise SpecError(
                    f"reference_sae {ref.reference_sae!r} is not an SAE of this "
                    f"spec; valid: {labels}",
                    field=f"{path}.reference_sae",
                )
            ref_width = d_sae.get(ref.reference_sae)
            if ref_width is not None and ref.reference_index >= ref_width:
                raise SpecError(
                    f"reference_index {ref.reference_index} is out of range (d_sae={ref_width})",
                    field=f"{path}.reference_index",
                )
    offline = exp.judge.is_offline()
    by_meaning = exp.judge.effective_kind() == "offline"  # the semantic judge reads labels too
    for i, study in enumerate(exp.studies):
        kind = kind_of(study)
        judged = kind.judged_feature(study)
        # the concept rubric (generations) reads meaning; a kind's own rubric (specificity's
        # highlighted contexts) reads keywords whichever offline judge it is
        needs = "keywords" if kind.rubrics or not by_meaning else "keywords or a label"
        if offline and judged is not None and not judged[1].keywords:
            if needs == "keywords" or not judged[1].label:
                raise SpecError(
                    f"the offline judge needs concept {needs} for this feature "
                    "(keywords=(...) or label=...)",
                    field=f"studies.{i}.{judged[0]}.keywords",
                )
        kind.validate(exp, study, f"studies.{i}")
    from harness.analysis.quality import QUALITY_STUDY

    for i, study in enumerate(exp.studies):
        if study.name == QUALITY_STUDY:
            raise SpecError(
                f"the study name {QUALITY_STUDY!r} is reserved for the SAE-quality rows",
                field=f"studies.{i}.name",
            )
    if not isinstance(exp.model, PretrainedModel):  # last: the spec is sound but for its words
        check_toy_words(exp)


def validate_loaded(exp: Experiment, model: Any, saes: Sequence[Any]) -> None:
    """Checks that need the loaded model and SAEs (hook points, widths, feature indices,
    positions against the model's tokenizer)."""
    check_positions_fit(
        exp, lambda prompt: int(model.to_tokens(prompt, prepend_bos=False).shape[-1])
    )
    for i, sae in enumerate(saes):
        if sae.hook_name not in model.hook_dict:
            valid = [h for h in model.hook_dict if "resid" in h]
            raise SpecError(
                f"SAE {sae.label!r} reads unknown hook point {sae.hook_name!r}; valid: {valid}",
                field=f"saes.{i}.hook",
            )
        if int(sae.sae.cfg.d_in) != model.cfg.d_model:
            raise SpecError(
                f"SAE {sae.label!r} has d_in={sae.sae.cfg.d_in} but the model's "
                f"width is {model.cfg.d_model}",
                field=f"saes.{i}",
            )
        for path, ref in study_features(exp):
            if isinstance(ref, FeatureByIndex) and ref.index >= sae.d_sae:
                raise SpecError(
                    f"feature index {ref.index} is out of range for SAE {sae.label!r} "
                    f"(d_sae={sae.d_sae}; valid: 0..{sae.d_sae - 1})",
                    field=f"{path}.index",
                )
