"""Evaluation of trained variants: configuration, the per-model runner over a list of attacks,
metrics with stated denominators, sanity checks, and the result records that eval writes and vis reads."""
