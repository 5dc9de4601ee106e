"""What the benchmark scripts share: FLOPs and the machine's matmul rate, training rates, result files, and the
budget benchmark's training and report. Each script (`python -m bench.<name>`) uses these; none uses another."""
