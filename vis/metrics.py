"""The plotted quantities: how to read each from a merged variant, and how to label it.

Figures show robust accuracy (over all n) and success over the initially
correct images; query counts are medians over the images that were correct
and then fooled. The original repository's success over all images stays in
the files and in summary.md, labelled as such, but is never plotted.
"""
from dataclasses import dataclass

from records.parts import QUERY_FIELDS
from vis.results import MISSING


@dataclass(frozen=True)
class Metric:
    quantity: str  # "robust accuracy", "clean accuracy", ...
    attack: str | None  # attack key, None for clean accuracy and sparsity
    attack_title: str | None
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
        return f"{self.attack_title}: {self.quantity}" if self.attack else self.quantity

    @property
    def panel_title(self):
        """Two short lines, for the small panels of a grid."""
        return f"{self.attack_title}\n{self.quantity}" if self.attack else self.quantity

    @property
    def series(self):
        """The key of its colour: the attack, or the variant-level field (clean accuracy, worst case)."""
        return self.attack or self.field

    def stat(self, variant):
        if self.attack is None:
            return {"clean_acc": variant.clean_acc, "worst_case": variant.worst_case}.get(self.field,
                                                                                         variant.own_sparsity)
        return variant.attack(self.attack, self.field) if self.attack in variant.attacks else MISSING

    def scaled(self, value):
        return None if value is None else value * 100 if self.percent else value


CLEAN_ACC = Metric("clean accuracy", None, None, "clean_acc")
# the number to lead with: an image counts as robust only if every attack run on it failed
WORST_CASE = Metric("robust accuracy, worst case per image over every attack", None, None, "worst_case")
OWN_SPARSITY = Metric("sparsity of the regularised layer", None, None, "own_sparsity")


def robust_acc(results, key):
    return Metric("robust accuracy", key, results.attack_info[key].title, "robust_acc")


def success_correct(results, key):
    return Metric("success, initially correct (%)", key, results.attack_info[key].title, "success_rate_correct")


def median_queries(results, key):
    return Metric("median queries (fooled & correct)", key, results.attack_info[key].title,
                  "median_queries_correct")
