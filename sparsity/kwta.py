"""k-winners-take-all (Xiao, Zhong & Zheng, ICLR 2020) in place of the layer's ReLU: the literature's sparsity
defence whose robustness was gradient masking (the activation pattern jumps as the input moves, so white-box
gradients mislead), broken by gradient-free attacks (Tramer et al., NeurIPS 2020).
"""
import contextlib

import torch
from torch import nn

from common.errors import ConfigError
from sparsity.base import SparsityMethod


class KWinners(nn.Module):
    """The original's ``Sparsify1D``/``Sparsify2D``: over each sample's flattened activation (all channels and
    positions of a convolution), values at least the k-th largest pass unchanged, the others are zeroed;
    k = max(1, int(gamma * n)). Ties at the threshold all pass, as in the original."""

    def __init__(self, gamma):
        super().__init__()
        self.gamma = gamma
        self.backward_as = None  # None: the true gradient; "identity" or "relu": straight-through (BPDA)

    def forward(self, x):
        flat = x.flatten(1)
        k = max(1, int(self.gamma * flat.shape[1]))
        threshold = flat.topk(k, dim=1).values[:, -1:]
        kept = (flat * (flat >= threshold)).view_as(x)
        if self.backward_as is None:
            return kept
        # BPDA (Athalye et al. 2018): the forward pass is k-WTA's, the backward pass that of a smooth stand-in
        surrogate = x if self.backward_as == "identity" else torch.relu(x)
        return kept.detach() + surrogate - surrogate.detach()

    def extra_repr(self):
        return f"gamma={self.gamma:g}"


class KWinnersTakeAll(SparsityMethod):
    """The strength is gamma, the fraction of each sample's activations kept, in (0, 1]. It masks gradients."""

    masks_gradients = True
    straight_through_modes = ("identity", "relu")

    @contextlib.contextmanager
    def straight_through(self, model, backward_as):
        """Every k-WTA layer of ``model`` backpropagates as the identity or a ReLU: the white-box attack through the
        top-k selection."""
        if backward_as not in self.straight_through_modes:
            raise ValueError(f"backward_as must be one of {', '.join(self.straight_through_modes)}, "
                             f"got {backward_as!r}")
        layers = [module for module in model.modules() if isinstance(module, KWinners)]
        for layer in layers:
            layer.backward_as = backward_as
        try:
            yield model
        finally:
            for layer in layers:
                layer.backward_as = None

    def validate_strength(self, strength, field="strength"):
        if isinstance(strength, (int, float)) and not isinstance(strength, bool) and not 0 < strength <= 1:
            raise ConfigError(field, f"({self.strength_label}) must be in (0, 1], got {strength:g}")
        return super().validate_strength(strength, field)

    def attach(self, model, layer, strength):
        # in place of the layer's nonlinearity (ReLU; the identity at the logits), not after it
        model.activations[layer] = KWinners(strength)
