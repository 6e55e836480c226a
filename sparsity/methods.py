"""The sparsity methods, each defined once: how it is named, shown, validated, and how it acts.

A method acts on one layer's output activation (``model.activations[layer]``)
in one or both of two ways: a loss term on the activation (``penalty``), and a
change to the model for training (``attach``, e.g. a module inserted after the
activation). Everything else in the project (command lines, file names,
figures, tables) reads the method's record instead of testing its name.

Adding a method: a new file with a ``SparsityMethod`` subclass, and one line
in METHODS (or ``register_method`` from a notebook or test).
"""
import math
from dataclasses import dataclass

import torch
from torch import nn

from common.errors import ConfigError

BASELINE = "standard"  # the unregularised model every method is compared with; not a method
DEFAULT_METHOD = "l1"


@dataclass(frozen=True)
class SparsityMethod:
    name: str  # key in files, folders and on the command line
    title: str  # figure titles and tables
    symbol: str  # the strength's symbol in labels: λ=0.01
    strength_label: str  # axis label
    default_strength: float
    sweep: tuple  # the original repository's sweep (--sweep)
    log_scale: bool  # strengths span decades: log axes, closeness measured in decades
    strength_below: float | None = None  # exclusive upper bound of the strength, if any

    def validate_strength(self, strength, field="strength"):
        """The strength as a float, or ConfigError: finite, >= 0, and below ``strength_below`` if set."""
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength):
            raise ConfigError(field, f"must be a finite number, got {strength!r}")
        if self.strength_below is not None and not 0 <= strength < self.strength_below:
            raise ConfigError(field, f"({self.strength_label}) must be in [0, {self.strength_below:g}), "
                                     f"got {strength:g}")
        if strength < 0:
            raise ConfigError(field, f"({self.strength_label}) must be >= 0, got {strength:g}")
        return float(strength)

    def strength_text(self, strength):
        return f"{self.symbol}={strength:g}"

    def attach(self, model, layer, strength):
        """Change ``model`` in place for training with this method at ``layer`` (default: nothing)."""

    def penalty(self, activation, strength):
        """The loss term on ``layer``'s activation, or None when the method adds none."""
        return None


class L1Penalty(SparsityMethod):
    """``strength * mean(|a|)`` of the layer's output activation, added to the loss."""

    def penalty(self, activation, strength):
        # Reduce in float32: under bf16 autocast the activation itself is bf16.
        return strength * activation.abs().mean(dtype=torch.float32)


class ActivationDropout(SparsityMethod):
    """``nn.Dropout(p = strength)`` on the layer's output activation; off in eval mode."""

    def attach(self, model, layer, strength):
        model.activations[layer] = nn.Sequential(model.activations[layer], nn.Dropout(strength))


METHODS = {method.name: method for method in (
    L1Penalty("l1", "L1 activation penalty", "λ", "L1 strength λ", 1e-2, (1e-5, 2e-4, 1e-2, 0.1, 1.0, 10.0),
              log_scale=True),
    ActivationDropout("dropout", "Dropout", "p", "dropout probability p", 0.3, (0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
                      log_scale=False, strength_below=1.0),
)}


def get_method(name, field="method"):
    if name not in METHODS:
        raise ConfigError(field, f"must be one of {', '.join(METHODS)}, got {name!r}")
    return METHODS[name]


def register_method(method):
    """Make ``method`` available everywhere (command line choices are read when the parser is built)."""
    if method.name in METHODS or method.name == BASELINE:
        raise ValueError(f"a sparsity method named {method.name!r} exists already")
    METHODS[method.name] = method
    return method
