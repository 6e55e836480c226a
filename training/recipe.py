"""The training recipe: every knob that changes the trained weights, in one record. A checkpoint stores its recipe;
resuming or skipping a model requires the same one, so that it is never silently continued under other settings.
"""
import math
from dataclasses import asdict, dataclass, fields, replace

from common import validation
from common.cli import command_flags, config_options, fraction, option
from common.errors import ConfigError
from data.augment import AUGMENTATIONS
from data.registry import DATASETS, DEFAULT_DATASET, get_dataset
from data.subsets import validate_classes
from models import DEFAULT_MODEL, model_class
from sparsity.methods import DEFAULT_METHOD
from training.adversarial import DEFAULT_ADV_STEPS
from training.schedule import SCHEDULES

# --quick: the whole pipeline on a CPU in minutes. The original recipe sits on a loss plateau at ln(10) for about
# its first 200 steps on real images, so the preset trains for QUICK_STEPS, several times that (300 images per
# class at batch 32). A data set's record may change these (Dataset.quick); explicit options override both.
QUICK = {"batch_size": 32, "train_per_class": 300, "test_per_class": 100}
QUICK_STEPS = 900


def _per_dataset(values):
    return "; ".join(f"{d.name} {values(d)}" for d in DATASETS.values())


@dataclass(frozen=True)
class Recipe:
    """Defaults are the original repository's: SGD(0.01, momentum 0.9), StepLR(20, 0.5), 100 epochs, batch 128.
    Each field with an option is a flag of ``main.py --mode train`` (``common.cli.option``)."""

    dataset: str = DEFAULT_DATASET  # --dataset, which every mode takes
    model: str = DEFAULT_MODEL  # --model, which train and eval take
    epochs: int = option(100, "default {default}")
    batch_size: int = option(128, "default {default}")
    lr: float = option(0.01, "SGD learning rate, default {default}")
    momentum: float = option(0.9, "default {default}")
    weight_decay: float = option(0.0, "default {default}")
    lr_step: int = option(20, "StepLR step in epochs, default {default}")  # schedule "step" only
    lr_gamma: float = option(0.5, "StepLR factor, default {default}")  # schedule "step" only
    # training.schedule: step (StepLR per epoch), onecycle or cosine (per SGD step)
    schedule: str = option("step", lambda: (
        "learning rate: step (StepLR, --lr-step/--lr-gamma), onecycle (warm-up to --lr, then cosine annealing, per "
        "SGD step) or cosine (from --lr, per SGD step) (default: the data set's recipe: "
        + _per_dataset(lambda d: dict(d.recipe).get("schedule", "step")) + ")"), choices=SCHEDULES)
    augment: str | None = option(None, lambda: (  # None: the data set's default (Dataset.augment)
        "standard: pad-4 crop + flip; crop: pad-4 crop; original: flip, rotate 8 deg, resized crop (default: the "
        "data set's: " + _per_dataset(lambda d: d.augment) + ")"), choices=AUGMENTATIONS)
    classes: tuple | None = option(None, "the data set's class indices to use, relabelled 0..k-1 in this order "
                                         "(default: all)", type=int, nargs="+", metavar="INDEX")
    train_per_class: int | None = option(None, "train on the first N images of each class (default: all)")
    test_per_class: int | None = option(None, "measure on the first N test images per class (default: all)")
    amp: bool = option(False, "bf16 autocast (default: whichever of fp32, fp32 + channels_last and bf16 + "
                              "channels_last trains fastest here, measured once per machine and model and cached); "
                              "the checkpoint's recipe records it; evaluation is always fp32")
    quick: bool = False  # --quick, which eval takes too
    # Adversarial training's attack settings (training.adversarial). Which attack and its eps are part of the
    # model's identity (models.spec.ModelSpec: adv, adv_eps); these only shape the attack. None: its default.
    adv_steps: int | None = option(None, f"PGD steps of --adv-train pgd (default {DEFAULT_ADV_STEPS})")
    adv_step_size: float | None = option(None, "step of --adv-train (default: pgd 2.5 x eps / steps, fgsm-rs 1.25 x "
                                               "eps)", type=fraction, metavar="STEP")

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

    @classmethod
    def from_stored(cls, stored):
        """The recipe of a checkpoint's recipe dict; a knob the stored recipe predates had its default then."""
        return cls(**{field.name: stored[field.name] for field in fields(cls) if field.name in stored})

    def train_command(self, spec, data_dir, models_root, force=False, state_amp=False):
        """The command that trains ``spec``'s model with this recipe into ``models_root``, for warnings and errors.
        ``state_amp``: state the precision (a checkpoint's, which the device's default may differ from)."""
        base = Recipe.from_options(quick=self.quick, dataset=self.dataset)
        flags = (["--quick"] if self.quick else []) + ([] if self.dataset == DEFAULT_DATASET else
                                                        ["--dataset", self.dataset])
        flags += [] if self.model == DEFAULT_MODEL else ["--model", self.model]
        if spec.is_baseline:
            flags += ["--baseline-only"]
        else:
            flags += ([] if spec.method == DEFAULT_METHOD else ["--method", spec.method])
            flags += ["--layers", spec.layer, "--strength", repr(spec.strength), "--no-baseline"]
        if spec.adv is not None:
            flags += ["--adv-train", spec.adv, "--adv-eps", repr(spec.adv_eps)]
        flags += ["--seed", str(spec.seed)]
        options = config_options(Recipe)
        values = {option.key: getattr(self, option.key) for option in options}
        flags += command_flags(options, {**values, "amp": base.amp}, {option.key: getattr(base, option.key)
                                                                      for option in options})
        if state_amp:
            flags += ["--amp" if self.amp else "--no-amp"]
        flags += ["--data-dir", str(data_dir), "--models-dir", str(models_root)]
        return " ".join(["python main.py --mode train", *flags, *(["--force"] if force else [])])

    def differences(self, stored):
        """``key: stored -> ours`` for every knob where a checkpoint's recipe dict differs from this one. A knob
        the stored recipe predates had its default then (the step schedule, no adversarial training)."""
        ours = self.to_dict()
        return [f"{field.name}: {stored.get(field.name, field.default)!r} -> {ours[field.name]!r}"
                for field in fields(self) if stored.get(field.name, field.default) != ours[field.name]]
