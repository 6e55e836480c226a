"""Attack algorithms, one file each, one contract (``attacks.base``), and their registry.

Adding an attack: a new file with an ``attacks.base.Attack`` subclass, and one line in ATTACKS.
"""
from attacks.autoattack import APGD, AutoAttack
from attacks.nes import NES
from attacks.nes_adaptive import NESAdaptive
from attacks.pgd import PGD
from attacks.square import Square

ATTACKS = {attack.name: attack for attack in (PGD, APGD, AutoAttack, Square, NES, NESAdaptive)}


def register_attack(attack):
    """Make ``attack`` (an Attack subclass) available to evaluations and the command line."""
    if attack.name in ATTACKS:
        raise ValueError(f"an attack named {attack.name!r} exists already")
    ATTACKS[attack.name] = attack
    return attack


__all__ = ["ATTACKS", "APGD", "AutoAttack", "NES", "NESAdaptive", "PGD", "Square", "register_attack"]
