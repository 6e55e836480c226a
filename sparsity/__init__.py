"""Where sparsity is placed (L1 penalty, dropout), how it is measured, and the training loop."""
