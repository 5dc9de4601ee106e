"""Benchmarks, each run as `python -m bench.<name>` (bench/README.md); the harness is common/commands/bench.py."""
