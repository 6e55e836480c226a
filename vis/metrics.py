"""The plotted quantities: how to read each from a merged variant, and how to label it."""
from dataclasses import dataclass

from vis.results_io import MISSING, QUERY_FIELDS, attack_title, nes_attack


@dataclass(frozen=True)
class Metric:
    quantity: str  # "success rate (all n)", "clean accuracy", ...
    attack: str | None  # attack key, None for clean accuracy and sparsity
    field: str  # "clean_acc", "own_sparsity" or a field of the attack entry

    @property
    def percent(self):
        return self.field not in QUERY_FIELDS

    @property
    def unit(self):
        return "%" if self.percent else "queries"

    @property
    def title(self):
        """One line, for legends."""
        return f"{attack_title(self.attack)}: {self.quantity}" if self.attack else self.quantity

    @property
    def panel_title(self):
        """Two short lines, for the small panels of a grid."""
        return f"{attack_title(self.attack)}\n{self.quantity}" if self.attack else self.quantity

    def stat(self, variant):
        if self.attack is None:
            return variant.clean_acc if self.field == "clean_acc" else variant.own_sparsity
        return variant.attack(self.attack, self.field) if self.attack in variant.attacks else MISSING

    def scaled(self, value):
        return None if value is None else value * 100 if self.percent else value


CLEAN_ACC = Metric("clean accuracy", None, "clean_acc")
OWN_SPARSITY = Metric("sparsity of the regularised layer", None, "own_sparsity")


def success_rate(attack):
    return Metric("success rate (all n)", attack, "success_rate_all")


def robust_acc(attack):
    return Metric("robust accuracy", attack, "robust_acc")


def median_queries(attack):
    return Metric("median queries", attack, "median_queries")


def nes_keys(attacks, goal):
    """The NES attack keys of one goal ("untargeted"/"targeted") present in ``attacks``, by momentum."""
    return [key for key in attacks if (nes_attack(key) or ("", 0))[0] == goal]


def expected_nes_keys(goal):
    """The NES runs the evaluation protocol defines, used to say which ones are absent."""
    return [f"nes_{goal}_m0", f"nes_{goal}_m0.9"]
