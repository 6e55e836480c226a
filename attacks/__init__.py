"""Attack algorithms, one file each, one contract (``attacks.base``), and their registry. Adding an attack: a file
with an ``Attack`` subclass (and its ``Settings``, whose options then appear in ``main.py --mode eval --help``) and
one line in ATTACKS.
"""
from attacks.autoattack import APGD, AutoAttack
from attacks.fab import FAB
from attacks.nes import NES
from attacks.nes_adaptive import NESAdaptive
from attacks.pgd import PGD
from attacks.square import Square

ATTACKS = {attack.name: attack for attack in (PGD, APGD, AutoAttack, Square, NES, NESAdaptive)}
# attacks with settings in an evaluation that are not run at its budget (FAB: the eps* search)
SEARCHES = {FAB.name: FAB}


def attack_settings():
    """``{name: Settings class}`` of every attack with settings of its own (the registered ones, then FAB's), in
    registry order: what an EvalConfig holds besides the shared protocol."""
    return {name: attack.Settings for name, attack in {**ATTACKS, **SEARCHES}.items() if attack.Settings is not None}


__all__ = ["ATTACKS", "APGD", "AutoAttack", "FAB", "NES", "NESAdaptive", "PGD", "SEARCHES", "Square",
           "attack_settings"]
