"""The registered data sets, and the folders of a results or models tree that belong to each.

Adding a data set: a new file in ``data/`` with its ``Dataset`` record, and one line in DATASETS; a data set of
class folders (train/<class>/, test/<class>/, or a tar of them) is the line alone (data.class_folder).
"""
from pathlib import Path

from common.errors import ConfigError
from data.cifar import CIFAR10
from data.class_folder import class_folder_dataset
from data.fashion_mnist import FASHION_MNIST
from data.mnist import MNIST
from sparsity.methods import METHODS

DATASETS = {
    "cifar10": CIFAR10,
    # CIFAR-10's 60,000 images re-encoded as JPEG (quality 75): CIFAR-10's protocol, never mixed with cifar10. Its
    # default recipe is CPU-sized (the original's 100 epochs take about 11 h per model on 2 cores): 10 epochs of a
    # one-cycle learning rate reached 78.8% test accuracy (docs/studies/cifar10-jpeg.md), short of convergence (training
    # accuracy under augmentation equals test accuracy there); --epochs 100 --lr 0.01 --schedule step
    # --weight-decay 0 is the original's.
    "cifar10-jpeg": class_folder_dataset("cifar10-jpeg", "CIFAR-10 (JPEG copy)", like=CIFAR10, recipe=(
        ("epochs", 10), ("batch_size", 128), ("lr", 0.04), ("weight_decay", 5e-4), ("schedule", "onecycle"))),
    "fashion-mnist": FASHION_MNIST,
    "mnist": MNIST,
}
DEFAULT_DATASET = "cifar10"
# Checkpoints and results written before data sets were registered sit directly in the models and results
# folders; all of them are CIFAR-10's (the only data set then).
LEGACY_DATASET = "cifar10"


def get_dataset(name):
    if name not in DATASETS:
        raise ConfigError("dataset", f"must be one of {', '.join(DATASETS)}, got {name!r}")
    return DATASETS[name]


def dataset_folder(root, name):
    """``root/name``: the folder of one data set's checkpoints (root: --models-dir) or results (--results-dir).

    A root in the layout before data sets (files of CIFAR-10 directly under it, no ``cifar10/`` folder) is
    CIFAR-10's folder itself, so existing checkpoints and results keep working where they are.
    """
    root = Path(root)
    if name == LEGACY_DATASET and not (root / name).exists() and _has_legacy_layout(root):
        return root
    return root / name


def dataset_root(folder, name):
    """The root whose ``dataset_folder(root, name)`` is ``folder`` (what --models-dir or --results-dir names)."""
    folder = Path(folder)
    return folder.parent if folder.name == name and dataset_folder(folder.parent, name) == folder else folder


def _has_legacy_layout(root):
    """Checkpoints or result folders of the old layout: ``standard_seed*.pt`` or a method folder of files."""
    if any(root.glob("standard_seed*.pt")):
        return True
    return any(any((root / method).glob("*.pt")) or any((root / method).glob("*.json")) for method in METHODS)


def datasets_in(root, holds):
    """The registered data sets whose folder under ``root`` satisfies ``holds(folder)``, in registry order."""
    return [name for name in DATASETS if holds(dataset_folder(root, name))]
