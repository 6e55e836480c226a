"""Every knob of one synthetic experiment, in one record that validates itself and names its results file."""
import hashlib
from dataclasses import asdict, dataclass, fields

from common import validation
from common.errors import ConfigError
from sparsity.methods import get_method
from synthetic.trainer import TrainSettings

MODES = ("l1", "dropout")
# How the L1 strength s weighs the hidden activations h (m points x width units) in the objective.
PENALTIES = {
    "mean": "s * mean(h) over points and units: the project's L1 (sparsity.methods), as on CIFAR-10",
    "sum": "s * sum(h) over points and units: the original repository's s * h.abs().sum()",
}
# Normalised GD at 0.1 overshoots (and oscillates chaotically) once the loss is tiny; 0.03 reaches 1e-7 steadily.
DEFAULT_LR = {"ngd": 0.03, "gd": 0.1}
# From no effect to nearly every unit dead at the default sizes and fit target (docs/synthetic.md's transition table).
# The two L1 sweeps are the same networks: "sum" strengths are the "mean" ones divided by m * width = 1e5.
DEFAULT_STRENGTHS = {
    ("l1", "mean"): (0.0, 1e-5, 3e-5, 5e-5, 1e-4, 2e-4, 5e-4),
    ("l1", "sum"): (0.0, 1e-10, 3e-10, 5e-10, 1e-9, 2e-9, 5e-9),
    ("dropout", None): (0.0, 0.1, 0.2, 0.5),
}
DEFAULT_PENALTY = {"l1": "mean", "dropout": None}
# A list longer than this in a results file name is replaced by a digest of it.
NAME_LIST_CHARS = 40


@dataclass(frozen=True)
class SyntheticConfig:
    """Field names are synthetic_run.py's flags; ``from_options`` fills the defaults that depend on other fields."""

    mode: str
    d: int = 200  # input dimension; the data have norm sqrt(d)
    m: int = 200  # training points
    width: int = 500  # hidden units
    penalty: str | None = None  # l1 only
    optimizer: str = "ngd"
    strengths: tuple = ()
    seeds: tuple = (0, 1, 2, 3, 4)
    lr: float = DEFAULT_LR["ngd"]
    steps: int = 20000  # cap on gradient steps; a run stopped by it is reported as not converged
    loss_target: float = 1e-7  # every run trains until its data loss is below this (equal fit)
    search_limit: float = 8.0  # flip searches stop at this multiple of sqrt(d)

    @classmethod
    def from_options(cls, mode, **options):
        """Config from options where None means "not given", validated."""
        validation.choice(mode, "mode", MODES)
        given = {key: tuple(value) if isinstance(value, list) else value
                 for key, value in options.items() if value is not None}
        penalty = given.get("penalty", DEFAULT_PENALTY[mode])
        optimizer = given.get("optimizer", cls.optimizer)
        defaults = {"strengths": DEFAULT_STRENGTHS.get((mode, penalty), ()), "penalty": penalty,
                    "lr": DEFAULT_LR.get(optimizer, cls.lr)}
        config = cls(mode=mode, **{**defaults, **given})
        config.validate()
        return config

    def validate(self):
        """ConfigError naming the first bad field."""
        validation.choice(self.mode, "mode", MODES)
        for field in ("d", "m", "width"):
            validation.integer(getattr(self, field), field, minimum=1)
        if self.mode == "l1":
            validation.choice(self.penalty, "penalty", tuple(PENALTIES))
        elif self.penalty is not None:
            raise ConfigError("penalty", f"applies to mode l1 only, got {self.penalty!r} with mode {self.mode}")
        method = get_method(self.mode, "mode")
        validation.distinct(self.strengths, "strengths")
        for strength in self.strengths:
            method.validate_strength(strength, "strengths")
        validation.seeds(self.seeds)
        self.train_settings().validate()
        validation.number(self.search_limit, "search_limit", above=0)

    def train_settings(self):
        return TrainSettings(lr=self.lr, steps=self.steps, optimizer=self.optimizer, loss_target=self.loss_target)

    @property
    def l1_scale(self):
        """The coefficient of sum(h) per unit of strength under this config's penalty."""
        return 1.0 / (self.m * self.width) if self.penalty == "mean" else 1.0

    def to_dict(self):
        record = asdict(self)
        record["strengths"], record["seeds"] = list(self.strengths), list(self.seeds)
        return record

    def results_name(self):
        """``{mode}``, then every setting unlike the defaults (of the chosen penalty and optimiser), so that no
        configuration writes over another's results."""
        reference = SyntheticConfig.from_options(self.mode, penalty=self.penalty, optimizer=self.optimizer)
        default = SyntheticConfig.from_options(self.mode)
        parts = [self.mode]
        for field in fields(self):
            ours = getattr(self, field.name)
            if field.name in ("penalty", "optimizer"):
                if ours != getattr(default, field.name):
                    parts.append(ours)
            elif ours != getattr(reference, field.name):
                parts.append(field.name + _name_value(ours))
        return "_".join(parts)


def _name_value(value):
    if not isinstance(value, tuple):
        return f"{value:g}"
    joined = "-".join(f"{item:g}" for item in value)
    if len(joined) <= NAME_LIST_CHARS:
        return joined
    return "-" + hashlib.sha1(joined.encode()).hexdigest()[:10]
