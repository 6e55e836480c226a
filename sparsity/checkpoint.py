"""Checkpoint files: one per variant, written atomically, loadable with ``weights_only=True``.

Layout (a plain dict of tensors and JSON-able values)::

    {"state_dict": model weights, "metadata": {...}, "optimizer": SGD state,
     "scheduler": StepLR state, "rng": {"cpu": ByteTensor, "cuda"/"mps": ByteTensor}}

``metadata`` is described in the README (train section); ``FORMAT`` marks our files.
"""
import platform
import pickle
import zipfile

import torch
import torchvision

from common.errors import UsageError
from common.io import atomic_torch_save
from sparsity.regularizers import build_model
from sparsity.variants import Variant

FORMAT = "sparsity-robustness/simple-cnn-checkpoint"
FORMAT_VERSION = 1
STATUSES = ("in_progress", "complete", "diverged")
REQUIRED_KEYS = ("state_dict", "metadata", "optimizer", "scheduler", "rng")
REQUIRED_METADATA = ("format", "format_version", "variant", "status", "epochs_done", "recipe", "num_classes")


def library_versions():
    # str(): torch.__version__ is a TorchVersion, which weights_only loading refuses.
    return {"torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
            "python": platform.python_version()}


def variant_record(variant):
    return {**variant.to_dict(), "name": variant.name}


def variant_from_metadata(metadata):
    record = metadata["variant"]
    return Variant(record["method"], record["layer"], record["strength"], record["seed"])


def save_checkpoint(path, model, optimizer, scheduler, rng, metadata):
    """Write the checkpoint atomically: a crash leaves the previous complete file in place."""
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    atomic_torch_save({
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "metadata": metadata,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng,
    }, path)


def load_checkpoint(path):
    """Read a checkpoint with ``weights_only=True``; a corrupt or foreign file is a UsageError naming it."""
    fix = f"delete {path} (or pass --force to retrain it) or choose another --models-dir"
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"checkpoint {path} does not exist; train it first with python main.py --mode train")
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile,
            AttributeError, ImportError, KeyError, TypeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"{path} is corrupt or not a checkpoint ({reason}); {fix}")
    problem = _format_problem(checkpoint)
    if problem:
        raise UsageError(f"{path} is not a checkpoint of this project ({problem}); {fix}")
    return checkpoint


def _format_problem(checkpoint):
    if not isinstance(checkpoint, dict):
        return f"holds a {type(checkpoint).__name__}, not a dict"
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        return f"no {', '.join(missing)}"
    metadata = checkpoint["metadata"]
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        return "metadata does not carry this project's format tag"
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        return f"metadata lacks {', '.join(missing)}"
    if metadata["format_version"] != FORMAT_VERSION:
        return f"format version {metadata['format_version']}, expected {FORMAT_VERSION}"
    if metadata["status"] not in STATUSES:
        return f"unknown status {metadata['status']!r}"
    return None


def model_from_checkpoint(checkpoint, device="cpu"):
    """The checkpoint's SimpleCNN on ``device``, in eval mode."""
    metadata = checkpoint["metadata"]
    model = build_model(variant_from_metadata(metadata), metadata["num_classes"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()
