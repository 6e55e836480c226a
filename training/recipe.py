"""The training recipe: every knob that changes the trained weights, in one record.

A checkpoint stores its recipe; resuming or skipping a variant requires the
same recipe, so that a model is never silently continued under other settings.
"""
import math
from dataclasses import asdict, dataclass, fields, replace

from common import validation
from common.errors import ConfigError
from data.augment import AUGMENTATIONS
from data.registry import DATASETS, DEFAULT_DATASET, get_dataset
from data.subsets import validate_classes
from models import DEFAULT_MODEL, model_class
from training.schedule import SCHEDULES

# --quick: a CPU-sized run of the whole pipeline in minutes, sized in SGD steps. The original recipe
# (SGD 0.01, momentum 0.9, default init, no normalisation) sits on a loss plateau at ln(10) for about
# the first 200 steps on real images, so the preset trains for at least QUICK_STEPS steps, several
# times that: 300 images per class at batch 32, as many epochs as that takes (10 for all ten classes).
# It trades accuracy and precision (clean accuracy and sparsity on 100 test images per class) for time;
# the model, the sparsity methods and the optimiser are unchanged. A data set's record may change these
# (Dataset.quick); explicit options override both.
QUICK = {"batch_size": 32, "train_per_class": 300, "test_per_class": 100}
QUICK_STEPS = 900


@dataclass(frozen=True)
class Recipe:
    """Defaults are the original repository's: SGD(0.01, momentum 0.9), StepLR(20, 0.5), 100 epochs, batch 128."""

    dataset: str = DEFAULT_DATASET
    model: str = DEFAULT_MODEL
    epochs: int = 100
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_step: int = 20  # schedule "step" only
    lr_gamma: float = 0.5  # schedule "step" only
    schedule: str = "step"  # training.schedule: step (StepLR per epoch), onecycle or cosine (per SGD step)
    augment: str | None = None  # None: the data set's default (Dataset.augment)
    classes: tuple | None = None  # the data set's class indices, relabelled 0..k-1 in this order; None: all
    train_per_class: int | None = None  # None: every training image of the chosen classes
    test_per_class: int | None = None  # None: the whole test set
    amp: bool = False  # bf16 autocast
    quick: bool = False
    # Adversarial training's attack settings (training.adversarial). Which attack and its eps are part of the
    # variant's identity (sparsity.variants.Variant: adv, adv_eps); these only shape the attack. None: its default.
    adv_steps: int | None = None
    adv_step_size: float | None = None

    def __post_init__(self):
        # The data set's defaults are written into the recipe, so a checkpoint states what it was trained with.
        if self.dataset in DATASETS:  # an unknown name is validate()'s to report
            dataset = get_dataset(self.dataset)
            if self.classes is None:
                object.__setattr__(self, "classes", tuple(range(dataset.num_classes)))
            if self.augment is None:
                object.__setattr__(self, "augment", dataset.augment)
        if isinstance(self.classes, list):
            object.__setattr__(self, "classes", tuple(self.classes))

    @classmethod
    def from_options(cls, quick=False, *, dataset, **options):
        """Recipe from options where None means "not given": the --quick preset if on (with the data set's own
        changes), else the data set's default recipe (Dataset.recipe; CIFAR-10's is the original repository's)."""
        dataset = get_dataset(dataset).name
        preset = {**QUICK, **dict(get_dataset(dataset).quick)} if quick else dict(get_dataset(dataset).recipe)
        given = {key: value for key, value in options.items() if value is not None}
        recipe = cls(**{**preset, **given, "dataset": dataset, "quick": quick})
        recipe.validate()
        if quick and "epochs" not in given and "epochs" not in preset:
            recipe = replace(recipe, epochs=math.ceil(QUICK_STEPS / recipe.steps_per_epoch))
        return recipe

    @property
    def steps_per_epoch(self):
        """SGD steps per epoch when every class has ``train_per_class`` images (at most the data set's)."""
        available = get_dataset(self.dataset).train_per_class
        per_class = self.train_per_class or available
        return math.ceil(len(self.classes) * min(per_class, available) / self.batch_size)

    def validate(self):
        """ConfigError naming the first bad field."""
        get_dataset(self.dataset)
        model_class(self.model)
        validation.integer(self.epochs, "epochs", minimum=1)
        validation.integer(self.batch_size, "batch_size", minimum=1)
        validation.number(self.lr, "lr", above=0)
        validation.number(self.momentum, "momentum", minimum=0, below=1)
        validation.number(self.weight_decay, "weight_decay", minimum=0)
        validation.integer(self.lr_step, "lr_step", minimum=1)
        validation.number(self.lr_gamma, "lr_gamma", above=0)
        validation.choice(self.schedule, "schedule", SCHEDULES)
        if self.adv_steps is not None:
            validation.integer(self.adv_steps, "adv_steps", minimum=1)
        if self.adv_step_size is not None:
            validation.number(self.adv_step_size, "adv_step_size", above=0)
        validation.choice(self.augment, "augment", AUGMENTATIONS)
        validate_classes(self.classes, self.dataset)
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
        """``key: stored -> ours`` for every knob where a checkpoint's recipe dict differs from this one. A knob
        the stored recipe predates had its default then (the step schedule, no adversarial training)."""
        ours = self.to_dict()
        return [f"{field.name}: {stored.get(field.name, field.default)!r} -> {ours[field.name]!r}"
                for field in fields(self) if stored.get(field.name, field.default) != ours[field.name]]
