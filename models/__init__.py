"""Architectures and their registry: ``cls(input_shape=(C, H, W), num_classes=k)`` whose ``forward(x)`` returns
logits for images in [0, 1], with ``LAYER_NAMES`` (where sparsity can be placed, in forward order) and a
``self.activations`` ModuleDict whose ``activations[layer]`` outputs that layer's activation. Nothing in a model
knows about training or sparsity. Adding a model: a new file with the class, and one line in MODELS.
"""
from common.registry import lookup
from models.simple_cnn import SimpleCNN

MODELS = {"simple_cnn": SimpleCNN}
DEFAULT_MODEL = "simple_cnn"


def model_class(name):
    return lookup(MODELS, name, "model")


def build_model(name, input_shape, num_classes):
    """A freshly initialised model for images of ``input_shape`` (C, H, W) (seed torch's RNG first for
    reproducible weights)."""
    return model_class(name)(input_shape=tuple(input_shape), num_classes=num_classes)


def layer_names(name=DEFAULT_MODEL):
    return model_class(name).LAYER_NAMES


def all_layer_names():
    """Every registered model's layers, in registry and forward order, each once."""
    return tuple(dict.fromkeys(layer for cls in MODELS.values() for layer in cls.LAYER_NAMES))


__all__ = ["MODELS", "DEFAULT_MODEL", "SimpleCNN", "all_layer_names", "build_model", "layer_names", "model_class"]
