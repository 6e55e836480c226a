from models.simple_cnn import LAYER_NAMES, SimpleCNN

__all__ = ["LAYER_NAMES", "SimpleCNN"]
