"""The Hugging Face hub as the harness meets it: offline mode, the local cache, a reachability
probe that answers in seconds, and local model folders standing in for hub repositories."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import BackendError

__all__ = [
    "cached_revision",
    "ensure_cached",
    "ensure_release_cached",
    "hub_offline",
    "hub_reachable",
    "local_model_config",
    "release_location",
]


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for no hub access."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def is_cached(repo_id: str, filename: str) -> bool:
    """Whether ``filename`` of ``repo_id`` is in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename), str)


def _snapshot_has(repo_id: str, path: str) -> bool:
    """Whether the cached snapshot of ``repo_id``'s main branch holds ``path`` (a file or a
    folder): what a release whose loader reads no ``cfg.json`` proves itself cached by."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return False
    return (repo / "snapshots" / ref.read_text().strip() / path).exists()


def release_location(release: str, sae_id: str) -> tuple[str, str]:
    """The repository of SAE ``sae_id`` of ``release`` (a SAELens release name, or a Hugging
    Face repository id whose folder ``sae_id`` holds the SAE, as SAELens reads both) and the
    file that proves it is cached: ``<folder>/cfg.json`` for SAELens-format repositories; for a
    release that SAELens converts (``conversion_func``: Gemma Scope, Llama Scope, Qwen Scope…),
    the path the release names."""
    from sae_lens.loading.pretrained_saes_directory import (
        get_pretrained_saes_directory,
        get_repo_id_and_folder_name,
    )

    repo_id, folder = get_repo_id_and_folder_name(release, sae_id=sae_id)
    info = get_pretrained_saes_directory().get(release)
    converted = info is not None and info.conversion_func not in (None, "sae_lens")
    return repo_id, folder if converted else f"{folder}/cfg.json"


def ensure_release_cached(release: str, sae_id: str, field: str) -> None:
    """:func:`ensure_cached` for an SAE of a release."""
    repo_id, proof = release_location(release, sae_id)
    if _snapshot_has(repo_id, proof):
        return
    ensure_cached(repo_id, proof, f"SAE release {release!r}", field)


def cached_revision(repo_id: str, filename: str = "config.json") -> str | None:
    """The commit of the cached snapshot that holds ``filename`` of ``repo_id`` (None: not
    cached): what identifies the weights a hub name stands for on this machine."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    if not isinstance(found, str):
        return None
    parts = Path(found).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def ensure_cached(repo_id: str, filename: str, what: str, field: str) -> None:
    """Fail in seconds, not after minutes of retries, when a hub download cannot work: a file
    in the local cache loads offline; otherwise the hub must answer (and HF_HUB_OFFLINE must
    not be set). ``filename`` is the file that proves the checkpoint is cached: a model's
    ``config.json``, a release SAE's ``<folder>/cfg.json``."""
    if is_cached(repo_id, filename):
        return
    if hub_offline():
        raise BackendError(
            f"{field}: {what} is not in the local Hugging Face cache ({repo_id}/{filename}) "
            "and HF_HUB_OFFLINE is set"
        )
    if not hub_reachable():
        raise BackendError(
            f"{field}: cannot download {what}: the Hugging Face hub is unreachable and it is "
            "not in the local cache (use the toy world, a local folder, or run where the hub "
            "is reachable)"
        )


@contextmanager
def local_model_config(official: str, folder: str) -> Iterator[None]:
    """While open, TransformerLens reads the config of ``official`` from ``folder`` (a local
    model in Hugging Face format) instead of the hub: its loader asks ``AutoConfig`` by the
    official name even when it is handed the model's weights."""
    import transformer_lens.loading_from_pretrained as tl_loading
    from transformers import AutoConfig

    class _Local:
        @staticmethod
        def from_pretrained(name: str, *args: Any, **kwargs: Any) -> Any:
            return AutoConfig.from_pretrained(folder if name == official else name, **kwargs)

    saved = getattr(tl_loading, "AutoConfig")  # noqa: B009  (not re-exported: mypy)
    setattr(tl_loading, "AutoConfig", _Local)  # noqa: B010
    try:
        yield
    finally:
        setattr(tl_loading, "AutoConfig", saved)  # noqa: B010
