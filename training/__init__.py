"""Training: the recipe, the training loop with resume, and checkpoints that rebuild their own model."""
