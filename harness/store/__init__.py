"""The run store: one directory per run, typed append-only records, the writer lock.

``RunStore`` and friends live in :mod:`harness.store.run_store`, the record models in
:mod:`harness.store.records`; the names are importable from here, loaded on first use (the
study kinds import the record models while the store's own imports are still loading).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.store.run_store import (
        RunLockedError,
        RunStore,
        default_runs_root,
        local_weights_fingerprint,
        write_atomic,
    )

__all__ = [
    "RunLockedError",
    "RunStore",
    "default_runs_root",
    "local_weights_fingerprint",
    "write_atomic",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'harness.store' has no attribute {name!r}")
    value = getattr(importlib.import_module("harness.store.run_store"), name)
    globals()[name] = value
    return value
