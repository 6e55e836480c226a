import torch

from common.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name):
    """Map --device to a torch.device; auto prefers cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "is cuda, but CUDA is not available; use auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device", "is mps, but MPS is not available; use auto or cpu")
    if name not in DEVICE_CHOICES:
        raise ConfigError("device", f"must be one of {', '.join(DEVICE_CHOICES)}, got {name!r}")
    return torch.device(name)
