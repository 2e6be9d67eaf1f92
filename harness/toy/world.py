"""Where the shipped toy world lives and what it contains (paths only; loading is in backend)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS", "TOY_HOOK", "eval_documents", "toy_sae_dir", "toy_sae_names"]

ASSETS = Path(__file__).parent / "assets"
TOY_HOOK = "blocks.1.hook_resid_pre"


def toy_sae_names(root: Path = ASSETS) -> list[str]:
    """Names of the toy SAE checkpoints shipped under ``root/saes``."""
    return sorted(p.name for p in (root / "saes").iterdir() if p.is_dir())


def toy_sae_dir(name: str, root: Path = ASSETS) -> Path:
    """Directory of one toy SAE checkpoint, in SAELens' disk format."""
    return root / "saes" / name


def eval_documents(root: Path = ASSETS) -> list[str]:
    """Held-out toy documents (not used in training) for feature statistics and evals."""
    return [line for line in (root / "corpus_eval.txt").read_text().splitlines() if line]
