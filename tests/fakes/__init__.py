"""Fakes of external services for the tests and benchmarks (never part of the package)."""
