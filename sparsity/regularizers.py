"""Where sparsity is placed: the model a variant trains and the extra loss term it adds.

L1 penalises the mean absolute output activation of one layer (post-ReLU; the
logits for fc3). Dropout lives inside SimpleCNN at that same activation, so its
variants add no loss term and dropout switches off with ``model.eval()``.
"""
import torch

from models.simple_cnn import SimpleCNN


def build_model(variant, num_classes):
    """A freshly initialised SimpleCNN for ``variant`` (seed the RNG first for reproducible weights)."""
    if variant.method == "dropout":
        return SimpleCNN(num_classes, dropout_layer=variant.layer, dropout_p=variant.strength)
    return SimpleCNN(num_classes)


def sparsity_penalty(variant, activations):
    """The loss term of ``variant``: ``strength * mean(|a|)`` at its layer for L1, else 0."""
    if variant.method != "l1":
        return 0.0
    # Reduce in float32: under bf16 autocast the activation itself is bf16.
    return variant.strength * activations[variant.layer].abs().mean(dtype=torch.float32)

