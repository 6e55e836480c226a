"""Sparsity methods as records, variant identity, activation hooks and sparsity measurement."""
