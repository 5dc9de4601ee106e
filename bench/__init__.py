"""Benchmarks, each run as `python -m bench.<name>` (bench/README.md); what they share is bench/harness/."""
