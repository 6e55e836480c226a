"""Checkpoint files, one per model, written atomically, loadable with ``weights_only=True``: a plain dict
``{"state_dict", "metadata", "optimizer", "scheduler", "rng": {"cpu", "cuda"/"mps"}}``. ``metadata`` carries the
model's spec, the recipe, ``input_shape`` and ``num_classes``, so a checkpoint rebuilds its own model (keys in
docs/file-formats.md); ``FORMAT`` marks our files.
"""
import importlib.metadata
import pickle
import platform
import zipfile

import torch

from common.errors import FileProblem
from common.io import atomic_torch_save
from data.registry import get_dataset
from data.subsets import load_test_images
from models import build_model
from models.spec import ModelSpec
from sparsity.methods import get_method

FORMAT = "sparsity-robustness/simple-cnn-checkpoint"
# 3: the recipe names the data set and the model, metadata has input_shape; 4: the model's ModelSpec ("spec") in
# place of its variant (read from a format-3 file as the variant with its recipe's data set and model)
FORMAT_VERSION = 4
STATUSES = ("in_progress", "complete", "diverged")
REQUIRED_KEYS = ("state_dict", "metadata", "optimizer", "scheduler", "rng")
REQUIRED_METADATA = ("format", "format_version", "status", "epochs_done", "recipe", "num_classes")


def library_versions():
    # str(): torch.__version__ is a TorchVersion, which weights_only loading refuses.
    return {"torch": str(torch.__version__), "torchvision": importlib.metadata.version("torchvision"),
            "python": platform.python_version()}


def save_checkpoint(path, model, optimizer, scheduler, rng, metadata):
    """Write the checkpoint atomically: a crash or a full disk leaves the previous complete file in place."""
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    state_dict = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    atomic_torch_save({"state_dict": state_dict, "metadata": metadata, "optimizer": optimizer.state_dict(),
                       "scheduler": scheduler.state_dict(), "rng": rng}, path, location="models_dir")


def load_checkpoint(path, overwrite=None, mmap=False):
    """Read a checkpoint with ``weights_only=True``; a missing, corrupt or foreign file is a FileProblem naming it
    (``overwrite``: the setting that would replace it, where the caller has one). ``mmap``: the tensors stay in the
    file until used (cheap to hold while only the metadata is needed)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise FileProblem(f"checkpoint {path} does not exist; train it first", "models_dir") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile,
            AttributeError, ImportError, KeyError, TypeError) as err:
        detail = str(err).splitlines()[0] if str(err) else ""
        raise FileProblem(f"{path} is corrupt or not a checkpoint ({type(err).__name__}{': ' if detail else ''}"
                          f"{detail}); delete it", "models_dir", overwrite) from None
    problem = _format_problem(checkpoint)
    if problem:
        raise FileProblem(f"{path} is not a checkpoint of this project ({problem}); delete it", "models_dir",
                          overwrite)
    _upgrade(checkpoint["metadata"])
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
    if metadata["format_version"] not in (3, FORMAT_VERSION):
        return f"format version {metadata['format_version']}, expected {FORMAT_VERSION} (retrain it)"
    if metadata["status"] not in STATUSES:
        return f"unknown status {metadata['status']!r}"
    return None


def _upgrade(metadata):
    """Format 3 named its model by a variant without its data set and architecture (both in its recipe)."""
    if metadata["format_version"] == 3:
        recipe = metadata["recipe"]
        variant = {**metadata.pop("variant"), "dataset": recipe["dataset"], "model": recipe["model"]}
        metadata["spec"] = ModelSpec.from_record(variant).to_record()
        metadata["format_version"] = FORMAT_VERSION


def build_spec_model(spec, input_shape, num_classes):
    """A freshly initialised model of ``spec``, its sparsity method attached (seed the RNG first)."""
    model = build_model(spec.model, input_shape, num_classes)
    if not spec.is_baseline:
        get_method(spec.method).attach(model, spec.layer, spec.strength)
    return model


def checkpoint_spec(checkpoint):
    return ModelSpec.from_record(checkpoint["metadata"]["spec"])


def model_from_checkpoint(checkpoint, device="cpu"):
    """The checkpoint's own model (architecture from its recipe, its weights) on ``device``, in eval mode."""
    metadata = checkpoint["metadata"]
    model = build_spec_model(checkpoint_spec(checkpoint), metadata["input_shape"], metadata["num_classes"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


def load_model(path, device="cpu"):
    """A checkpoint file's model, checked and rebuilt, on ``device``, in eval mode; ``model.checkpoint_metadata``
    keeps the file's metadata."""
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint, device)
    model.checkpoint_metadata = checkpoint["metadata"]
    return model


def checkpoint_test_set(source, data_dir):
    """The test set a checkpoint was trained for (its data set and classes, relabelled as in training) as float
    images in [0, 1] and int64 labels. ``source``: a model from ``load_model``, or a checkpoint's metadata."""
    metadata = source.checkpoint_metadata if isinstance(source, torch.nn.Module) else source
    return load_test_images(get_dataset(metadata["recipe"]["dataset"]).name, data_dir, metadata["recipe"]["classes"])
