"""Markdown reports rebuilt from the run store (DESIGN §8)."""
