"""The sparsity methods, each defined once: how it is named, shown, validated, and how it acts on one layer's output
activation (``model.activations[layer]``): a loss term (``penalty``) and/or a change to the model (``attach``).
Everything else (command lines, file names, figures, tables) reads the method's record instead of testing its name.
Adding a method: a ``SparsityMethod`` subclass and one line in METHODS.
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

