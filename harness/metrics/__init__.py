"""Measurements and statistics (DESIGN §7)."""
