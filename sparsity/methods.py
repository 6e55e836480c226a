"""The sparsity methods, each defined once: how it is named, shown, validated, and how it acts.

A method acts on one layer's output activation (``model.activations[layer]``)
in one or both of two ways: a loss term on the activation (``penalty``), and a
change to the model for training (``attach``, e.g. a module inserted after the
activation). Everything else in the project (command lines, file names,
figures, tables) reads the method's record instead of testing its name.

Adding a method: a new file with a ``SparsityMethod`` subclass, and one line
in METHODS (or ``register_method`` from a notebook or test).
"""
import torch
from torch import nn

from common.errors import ConfigError
from sparsity.base import SparsityMethod
from sparsity.kwta import KWinnersTakeAll

BASELINE = "standard"  # the unregularised model every method is compared with; not a method
DEFAULT_METHOD = "l1"


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
    KWinnersTakeAll("kwta", "k-winners-take-all", "γ", "fraction kept γ", 0.1, (0.05, 0.1, 0.2, 0.3, 0.5),
                    log_scale=False),
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
