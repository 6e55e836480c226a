"""White-box PGD (L-inf and L2) and black-box NES attacks, and the evaluation loops."""
