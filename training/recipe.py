"""The training recipe: every knob that changes the trained weights, in one record.

A checkpoint stores its recipe; resuming or skipping a variant requires the
same recipe, so that a model is never silently continued under other settings.
"""
import math
from dataclasses import asdict, dataclass, fields, replace

from common import validation
from common.errors import ConfigError
from data.augment import AUGMENTATIONS
from data.cifar import validate_classes
from models import DEFAULT_MODEL, model_class

ALL_CLASSES = tuple(range(10))
CIFAR_TRAIN_PER_CLASS = 5000

# --quick: a CPU-sized run of the whole pipeline in minutes, sized in SGD steps. The original recipe
# (SGD 0.01, momentum 0.9, default init, no normalisation) sits on a loss plateau at ln(10) for about
# the first 200 steps on real images, so the preset trains for at least QUICK_STEPS steps, several
# times that: 300 images per class at batch 32, as many epochs as that takes (10 for all ten classes).
# It trades accuracy and precision (clean accuracy and sparsity on 100 test images per class) for time;
# the model, the sparsity methods and the optimiser are unchanged. Explicit options override these.
QUICK = {"batch_size": 32, "train_per_class": 300, "test_per_class": 100}
QUICK_STEPS = 900


@dataclass(frozen=True)
class Recipe:
    """Defaults are the original repository's: SGD(0.01, momentum 0.9), StepLR(20, 0.5), 100 epochs, batch 128."""

    model: str = DEFAULT_MODEL
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
        """Recipe from options where None means "not given": the --quick preset if on, else the default."""
        base = replace(cls(), quick=quick, **(QUICK if quick else {}))
        given = {key: value for key, value in options.items() if value is not None}
        if "classes" in given:
            given["classes"] = tuple(given["classes"])
        recipe = replace(base, **given)
        recipe.validate()
        if quick and "epochs" not in given:
            recipe = replace(recipe, epochs=math.ceil(QUICK_STEPS / recipe.steps_per_epoch))
        return recipe

    @property
    def steps_per_epoch(self):
        """SGD steps per epoch when every class has ``train_per_class`` images (CIFAR-10 has 5,000 each)."""
        per_class = self.train_per_class or CIFAR_TRAIN_PER_CLASS
        return math.ceil(len(self.classes) * min(per_class, CIFAR_TRAIN_PER_CLASS) / self.batch_size)

    def validate(self):
        """ConfigError naming the first bad field."""
        model_class(self.model)
        validation.integer(self.epochs, "epochs", minimum=1)
        validation.integer(self.batch_size, "batch_size", minimum=1)
        validation.number(self.lr, "lr", above=0)
        validation.number(self.momentum, "momentum", minimum=0, below=1)
        validation.number(self.weight_decay, "weight_decay", minimum=0)
        validation.integer(self.lr_step, "lr_step", minimum=1)
        validation.number(self.lr_gamma, "lr_gamma", above=0)
        validation.choice(self.augment, "augment", AUGMENTATIONS)
        validate_classes(self.classes)
        for field in ("train_per_class", "test_per_class"):
            if getattr(self, field) is not None:
                validation.integer(getattr(self, field), field, minimum=1)
        if not isinstance(self.amp, bool):
            raise ConfigError("amp", f"must be True or False, got {self.amp!r}")

    def to_dict(self):
        record = asdict(self)
        record["classes"] = list(self.classes)
        return record

    def differences(self, stored):
        """``key: stored -> ours`` for every knob where a checkpoint's recipe dict differs from this one."""
        ours = self.to_dict()
        return [f"{field.name}: {stored.get(field.name)!r} -> {ours[field.name]!r}"
                for field in fields(self) if stored.get(field.name) != ours[field.name]]
