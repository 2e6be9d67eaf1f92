"""How many CPU threads torch's intra-op pool uses for a model: one for small models, whose
matrix products are too small to gain from splitting and lose to thread hand-offs (more so on a
shared, loaded machine), every core for large ones. ``HARNESS_THREADS`` (``--threads``) fixes it.

Measured on this project's 2-core machine with ``harness bench threads``
(``experiments/toy_specificity.py`` end to end): quiet, 17.9 s on one thread vs 16.4 s on two;
with a busy loop on each core, 26.9 s vs 35.9 s (README "Threads").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from harness.errors import HarnessError

__all__ = ["SMALL_MODEL_PARAMS", "Threads", "apply_threads", "threads_override"]

SMALL_MODEL_PARAMS = 50_000_000  # below this, one thread (the toy model, pythia-14m…)


@dataclass(frozen=True)
class Threads:
    """The intra-op thread count applied, and why."""

    n: int
    reason: str

    def as_json(self) -> dict[str, object]:
        return {"n": self.n, "reason": self.reason}


def threads_override() -> int | None:
    """``HARNESS_THREADS`` as a positive int (None: unset); a bad value is a one-line error."""
    raw = os.environ.get("HARNESS_THREADS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise HarnessError(f"HARNESS_THREADS / --threads must be a positive integer, got {raw!r}")
    return int(raw)


def apply_threads(model: torch.nn.Module, device: str) -> Threads:
    """Set torch's intra-op threads for ``model`` on ``device`` and say what was chosen."""
    override = threads_override()
    if override is not None:
        chosen = Threads(override, "--threads / HARNESS_THREADS")
    elif device != "cpu":
        return Threads(torch.get_num_threads(), f"{device}: torch's default (the GPU computes)")
    else:
        n_params = sum(p.numel() for p in model.parameters())
        if n_params < SMALL_MODEL_PARAMS:
            chosen = Threads(1, f"{n_params / 1e6:.1f} M parameters: one thread for a small model")
        else:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
            chosen = Threads(
                cores or os.cpu_count() or 1, f"{n_params / 1e6:.0f} M parameters: every core"
            )
    torch.set_num_threads(chosen.n)
    return chosen
