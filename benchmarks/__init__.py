"""Benchmark suite for amorsize_exec: ``python -m benchmarks.run`` (see benchmarks/README.md)."""
