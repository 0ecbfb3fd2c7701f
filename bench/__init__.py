"""Benchmarks: `python -m bench SCENARIO` (see docs/benchmarks.md)."""
