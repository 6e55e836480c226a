"""The training recipe: every knob that changes the trained weights, in one record.

A checkpoint stores its recipe; resuming or skipping a variant requires the
same recipe, so that a model is never silently continued under other settings.
"""
from dataclasses import asdict, dataclass, fields, replace

from common.errors import UsageError
from data.augment import AUGMENTATIONS

ALL_CLASSES = tuple(range(10))

# --quick: a CPU-sized run of the whole pipeline in minutes. It trades accuracy
# (a few epochs on 2,000 of the 50,000 training images) and precision (clean
# accuracy and sparsity on 500 test images) for time; the model, the sparsity
# methods and the optimiser are unchanged. Explicit flags still override these.
QUICK = {"epochs": 3, "train_per_class": 200, "test_per_class": 50}


@dataclass(frozen=True)
class Recipe:
    """Defaults are the original repository's: SGD(0.01, momentum 0.9), StepLR(20, 0.5), 100 epochs, batch 128."""

    epochs: int = 100
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_step: int = 20
    lr_gamma: float = 0.5
    augment: str = "standard"
    classes: tuple = ALL_CLASSES  # CIFAR-10 indices, relabelled 0..k-1 in this order
    train_per_class: int | None = None  # None: every training image of the chosen classes
    test_per_class: int | None = None  # None: the whole test set
    amp: bool = False  # bf16 autocast
    quick: bool = False

    @classmethod
    def from_options(cls, quick=False, **options):
        """Recipe from CLI options: None means "not given" -> the --quick preset if on, else the default."""
        base = replace(cls(), quick=quick, **(QUICK if quick else {}))
        given = {key: value for key, value in options.items() if value is not None}
        if "classes" in given:
            given["classes"] = tuple(given["classes"])
        recipe = replace(base, **given)
        recipe.validate()
        return recipe

    def validate(self):
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be positive, got {self.lr:g}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum:g}"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay:g}"),
            (self.lr_step >= 1, f"--lr-step must be at least 1, got {self.lr_step}"),
            (self.lr_gamma > 0, f"--lr-gamma must be positive, got {self.lr_gamma:g}"),
            (self.augment in AUGMENTATIONS, f"unknown --augment {self.augment!r}; choose one of {', '.join(AUGMENTATIONS)}"),
            (self.train_per_class is None or self.train_per_class >= 1,
             f"--train-per-class must be at least 1, got {self.train_per_class}"),
            (self.test_per_class is None or self.test_per_class >= 1,
             f"--test-per-class must be at least 1, got {self.test_per_class}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(f"{message}; pass a valid value")

    def to_dict(self):
        record = asdict(self)
        record["classes"] = list(self.classes)
        return record

    def differences(self, stored):
        """``key: stored -> ours`` for every knob where a checkpoint's recipe dict differs from this one."""
        ours = self.to_dict()
        return [f"{field.name}: {stored.get(field.name)!r} -> {ours[field.name]!r}"
                for field in fields(self) if stored.get(field.name) != ours[field.name]]
