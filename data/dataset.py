"""What the project knows about a data set, in one record (shape, classes, files, attack budget, augmentation), so
that models, recipes, attacks and figures read it instead of assuming CIFAR-10."""
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import torch


@dataclass
class ImageData:
    """A data set's own train/test split as stored: uint8 (N, C, H, W) images and int64 labels. Tensors may be
    shared with a cache: do not modify them in place."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list  # class names, index = label


@dataclass(frozen=True)
class Dataset:
    name: str  # key on the command line, in recipes, result records and folder names
    title: str  # figures and tables
    input_shape: tuple  # (channels, height, width)
    class_names: tuple  # index = label
    source: str  # the files it reads and how to obtain them (docs/data.md, --help, error messages)
    eps: float  # the standard L-inf budget of the literature on this data set
    step: float  # PGD and NES step at that budget
    eps_sweep: tuple  # --eps-sweep given without values
    eps_denominator: int | None  # budgets written as k/255 (CIFAR-10) or, with None, as decimals (0.1)
    augment: str  # default training augmentation (data.augment)
    augment_reason: str  # why that one: a horizontal flip must not change the class
    train_per_class: int  # training images per class (sizes --quick's epochs)
    read: Callable  # read(data_dir: Path, download: bool) -> ImageData, or FileProblem naming what to fix
    quick: tuple = ()  # (field, value) pairs of the training --quick preset that differ for this data set
    recipe: tuple = ()  # (field, value) pairs of its default training recipe (without --quick) that differ from
    #                     training.recipe.Recipe's, the original repository's CIFAR-10 recipe

    @property
    def num_classes(self):
        return len(self.class_names)

    def format_eps(self, eps):
        """An L-inf budget in this data set's own units: ``8/255`` for CIFAR-10, ``0.1`` for Fashion-MNIST."""
        if self.eps_denominator is None:
            return f"{eps:.3g}"
        steps = Fraction(eps * self.eps_denominator).limit_denominator(1000)
        return f"{float(steps):.3g}/{self.eps_denominator}"

    @property
    def eps_unit(self):
        """Axis label suffix for budgets in this data set's units."""
        return f"x 1/{self.eps_denominator}" if self.eps_denominator else "pixel scale [0, 1]"

    def scale_eps(self, eps):
        """A budget as a number on this data set's axis (8/255 -> 8 for CIFAR-10, 0.1 -> 0.1 otherwise)."""
        return eps * self.eps_denominator if self.eps_denominator else eps
