"""Evaluators: the population training engine and the four speed-ups (early stopping, weight sharing, pruning,
incremental training) that score candidate architectures by training them."""
