"""The registered data sets. Adding one: a file in ``data/`` with its ``Dataset`` record and a line in DATASETS; a
data set of class folders is the line alone (data.class_folder)."""
from common.registry import lookup
from data.cifar import CIFAR10
from data.class_folder import class_folder_dataset
from data.fashion_mnist import FASHION_MNIST
from data.mnist import MNIST

DATASETS = {
    "cifar10": CIFAR10,
    # CIFAR-10's images as JPEG (quality 75), never mixed with cifar10. Its recipe is CPU-sized (the original's 100
    # epochs take 11 h per model on 2 cores): 78.8% test accuracy, short of convergence (docs/studies/cifar10-jpeg.md);
    # --epochs 100 --lr 0.01 --schedule step --weight-decay 0 is the original's.
    "cifar10-jpeg": class_folder_dataset("cifar10-jpeg", "CIFAR-10 (JPEG copy)", like=CIFAR10, recipe=(
        ("epochs", 10), ("batch_size", 128), ("lr", 0.04), ("weight_decay", 5e-4), ("schedule", "onecycle"))),
    "fashion-mnist": FASHION_MNIST,
    "mnist": MNIST,
}
DEFAULT_DATASET = "cifar10"


def get_dataset(name):
    return lookup(DATASETS, name, "dataset")
