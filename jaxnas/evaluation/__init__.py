"""Evaluators: score candidate architectures (tabular benchmarks now; trained populations later)."""
