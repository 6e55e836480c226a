"""Evaluation of trained variants: configuration, the per-model runner, metrics, eps* and sanity checks."""
