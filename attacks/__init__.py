"""White-box PGD (L-inf and L2), black-box NES attacks, and the evaluation loops."""
from attacks.nes import NES
from attacks.pgd import PGD

__all__ = ["NES", "PGD"]
