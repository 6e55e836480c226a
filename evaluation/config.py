"""Every knob of one evaluation, in one record that validates itself: the shared protocol as fields, each attack's
own settings as its ``Settings``, and their command-line options declared with the fields (``common.cli.option``)."""
from dataclasses import asdict, dataclass, field, fields, replace

from attacks import ATTACKS, attack_settings
from attacks.adaptive import ADAPTIVE
from attacks.nes import default_query_batch, validate_query_batch
from evaluation.minimal import LIMIT_PER_EPS
from evaluation.minimal import NORMS as MINIMAL_NORMS
from common import validation
from common.cli import command_flags, config_options, fraction, option
from common.errors import ConfigError
from data.registry import DATASETS, DEFAULT_DATASET, get_dataset
from models import layer_names
from sparsity.methods import DEFAULT_METHOD

# --quick: a check of the pipeline, not a finding: every measure runs on few images at small budgets, in at most 3
# minutes per model on 2 cores (docs/benchmarks.md). Each attack's own preset is its Settings.quick.
QUICK = {"attacks": ("pgd", "apgd", "square", "nes", "nes_adaptive"), "n_eval": 32, "query_n": 8,
         "minimal_norms": ("linf",), "check_n": 32, "audit_n": 8}
AUDIT_MULTIPLES = ("0.5x", "1x", "1.5x")  # default audit radii: multiples of the reference median eps*


def audit_radius(value, field="audit_radii"):
    """``(number, is_multiple)`` of one audit radius: ``0.03`` (an L-inf eps) or ``1.5x`` (of the median eps*)."""
    text = str(value).strip()
    multiple = text.endswith("x")
    try:
        number = float(text[:-1] if multiple else text)
    except ValueError:
        raise ConfigError(field, f"has {value!r}, which is neither an eps (0.03) nor a multiple of the median eps* "
                                 "(1.5x)") from None
    if not number > 0 or number != number or number == float("inf"):
        raise ConfigError(field, f"must be positive, got {value!r}; e.g. 0.5x 1x 1.5x or 0.015 0.03 0.045")
    if not multiple and number > 1:
        raise ConfigError(field, f"has the eps {value!r} > 1 (images live in [0, 1]); a multiple is written 1.5x")
    return number, multiple
DEFAULT = get_dataset(DEFAULT_DATASET)  # the budget of a config made without a data set


def _per_dataset(values):
    return "; ".join(f"{d.name} {values(d)}" for d in DATASETS.values())


def default_settings():
    return {name: settings() for name, settings in attack_settings().items()}


@dataclass(frozen=True)
class EvalConfig:
    """The protocol of docs/usage.md; budget and step are the data set's (CIFAR-10's for a bare ``EvalConfig()``)."""

    attacks: tuple = option(("pgd", "autoattack", "square", "nes"), lambda: (
        f"attacks to run, of {' '.join(ATTACKS)} (default: {{default}}; --quick: {' '.join(QUICK['attacks'])})"),
        nargs="+", choices=lambda: list(ATTACKS), metavar="ATTACK")
    eps: float = option(DEFAULT.eps, lambda: "L-inf budget of every attack, in [0, 1] (default: the data set's: "
                        + _per_dataset(lambda d: d.format_eps(d.eps)) + ")", type=fraction)
    alpha: float = option(DEFAULT.step, lambda: "step size of PGD and NES (default: the data set's: "
                          + _per_dataset(lambda d: d.format_eps(d.step)) + ")", type=fraction)
    n_eval: int | None = option(None, "attack the first N test images (default: all)", metavar="N")
    query_n: int = option(1000, "query-based attacks (NES, Square) on a seeded subset of N of them (default "
                                "{default})", aliases=("--nes-n",), metavar="N")
    eps_sweep: tuple = option((), lambda: "also run the white-box attacks at each EPS for robustness curves (given "
                              "alone: the data set's: "
                              + _per_dataset(lambda d: " ".join(map(d.format_eps, d.eps_sweep))) + ")",
                              type=fraction, nargs="*", metavar="EPS")
    minimal_norms: tuple = option(MINIMAL_NORMS, "norms of the per-image minimal perturbation eps* (FAB and a PGD "
                                                 "bisection), of linf l2, or none (default: {default})",
                                  nargs="+", choices=MINIMAL_NORMS, metavar="NORM", none="the measure")
    minimal_limit: float | None = option(None, f"L-inf search limit of eps*, in (0, 1] (L2: EPS x sqrt(pixels); "
                                               f"default {LIMIT_PER_EPS} x --eps)", type=fraction, metavar="EPS")
    audit_radii: tuple = option(AUDIT_MULTIPLES, "AutoAttack (standard) at these L-inf radii, checked against the "
                                "eps* curve: eps values (0.03) or multiples of the same-seed baseline's median eps* "
                                "(1.5x; the model's own where the baseline has no record yet), or none (default: "
                                "{default})", nargs="+", metavar="EPS|Mx", none="it")
    audit_n: int | None = option(None, "the audit's AutoAttack on the first N evaluated images (default: all; each "
                                       "radius costs AutoAttack on every image still robust there)", metavar="N")
    adaptive_attacks: tuple = option(tuple(ADAPTIVE), "adaptive attacks run on models whose sparsity method masks "
                                     f"gradients (k-WTA), at the audit radii, inside eps*: of {' '.join(ADAPTIVE)}, "
                                     "or none (default: all)",
                                     nargs="+", metavar="NAME", none="it")
    query_batch: int | None = option(None, "images per NES forward pass, even (default 4096 on CUDA, 64 otherwise)",
                                     metavar="N")
    batch_size: int = option(256, "images per white-box attack batch (default {default})", flag="--eval-batch-size",
                             metavar="N")
    black_box_batch_size: int = 100  # images per call of a query-based attack
    check_n: int = option(500, "images for the sanity checks (default {default})", metavar="N")
    seed: int = 0  # the variant's (--seed)
    quick: bool = False
    attack_settings: dict = field(default_factory=default_settings)

    @staticmethod
    def options():
        found = config_options(EvalConfig)
        for name, settings in attack_settings().items():
            found += config_options(settings, owner=name)
        keys = [option.key for option in found]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"settings of several attacks share the option {', '.join(repeated)}: give one a key")
        return found

    @classmethod
    def from_options(cls, quick=False, *, dataset, **options):
        """From options keyed as ``options()`` (None: not given) over the preset, with ``dataset``'s budget and step."""
        dataset = get_dataset(dataset)
        given = {key: tuple(value) if isinstance(value, list) else value
                 for key, value in options.items() if value is not None}
        config = cls(eps=dataset.eps, alpha=dataset.step).with_options(
            **{**(quick_preset() if quick else {}), **given, "quick": quick})
        config.validate()
        return config

    def with_options(self, **options):
        """A copy with ``options`` (keyed as ``from_options`` takes them); not validated."""
        by_key = {option.key: option for option in self.options()}
        shared, settings = {}, {}
        for key, value in options.items():
            option = by_key.get(key)
            if option is not None and option.owner is not None:
                settings.setdefault(option.owner, {})[option.name] = value
            elif key in {f.name for f in fields(self)}:
                shared[key] = value
            else:
                raise TypeError(f"EvalConfig has no option {key!r}")
        changed = {**self.attack_settings}
        for owner, values in settings.items():
            changed[owner] = replace(self.settings_of(owner), **values)
        return replace(self, **shared, attack_settings=changed)

    def settings_of(self, name):
        """The settings of attack ``name`` (its defaults where this config predates its registration)."""
        return self.attack_settings[name] if name in self.attack_settings else attack_settings()[name]()

    def option_values(self):
        return {option.key: getattr(self.settings_of(option.owner) if option.owner else self, option.name)
                for option in self.options()}

    def validate(self):
        """ConfigError naming the first bad field (an attack's setting by its option key, e.g. ``nes_steps``)."""
        validation.distinct(self.attacks, "attacks")
        for name in self.attacks:
            if name not in ATTACKS:
                raise ConfigError("attacks", f"has unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
        # images live in [0, 1]: an L-inf budget or step beyond 1 is a typo, not an experiment
        validation.number(self.eps, "eps", minimum=0, maximum=1)
        validation.number(self.alpha, "alpha", above=0, maximum=1)
        if self.n_eval is not None:
            validation.integer(self.n_eval, "n_eval", minimum=1)
        validation.integer(self.query_n, "query_n", minimum=1)
        for eps in validation.distinct(self.eps_sweep, "eps_sweep") if self.eps_sweep else ():
            validation.number(eps, "eps_sweep", above=0, maximum=1)
        for norm in validation.distinct(self.minimal_norms, "minimal_norms") if self.minimal_norms else ():
            validation.choice(norm, "minimal_norms", MINIMAL_NORMS)
        if self.minimal_limit is not None:
            validation.number(self.minimal_limit, "minimal_limit", above=0, maximum=1)
        for radius in validation.distinct(self.audit_radii, "audit_radii") if self.audit_radii else ():
            audit_radius(radius)
        if self.audit_n is not None:
            validation.integer(self.audit_n, "audit_n", minimum=1)
        for name in validation.distinct(self.adaptive_attacks, "adaptive_attacks") if self.adaptive_attacks else ():
            if name not in ADAPTIVE:
                raise ConfigError("adaptive_attacks", f"has unknown adaptive attack {name!r}; choose from "
                                                      f"{', '.join(ADAPTIVE)}")
        if self.query_batch is not None:
            validate_query_batch(self.query_batch)
        validation.integer(self.batch_size, "batch_size", minimum=1)
        validation.integer(self.black_box_batch_size, "black_box_batch_size", minimum=1)
        validation.integer(self.check_n, "check_n", minimum=0)
        validation.seed(self.seed)
        keys = {(option.owner, option.name): option.key for option in self.options() if option.owner}
        for name, settings in self.attack_settings.items():
            try:
                settings.validate()
            except ConfigError as err:
                raise ConfigError(keys.get((name, err.field), f"{name}.{err.field}"), err.problem) from None

    def resolved(self, device, n_test):
        """The settings as run (and recorded) on ``device`` over ``n_test`` images: counts capped, defaults filled."""
        n_eval = n_test if self.n_eval is None else min(self.n_eval, n_test)
        limit = self.minimal_limit or (min(1.0, LIMIT_PER_EPS * self.eps) if self.eps > 0 else 1.0)
        return replace(self, n_eval=n_eval, query_n=min(self.query_n, n_eval),
                       audit_n=n_eval if self.audit_n is None else min(self.audit_n, n_eval),
                       query_batch=self.query_batch or default_query_batch(device), minimal_limit=limit)

    def to_dict(self):
        """As JSON reads it back (tuples as lists); each attack's settings under ``attack_settings``."""
        record = {f.name: as_lists(getattr(self, f.name)) for f in fields(self) if f.name != "attack_settings"}
        return {**record, "attack_settings": {name: as_lists(asdict(s)) for name, s in self.attack_settings.items()}}

    def command(self, *, dataset, method, layers=None, results_dir=None):
        """The eval command of this evaluation of ``method``'s variants at ``layers`` (None: the default ones)."""
        parts = ["python main.py --mode eval"] + (["--quick"] if self.quick else [])
        if dataset != DEFAULT_DATASET:
            parts += ["--dataset", dataset]
        if method != DEFAULT_METHOD:
            parts += ["--method", method]
        if layers is not None and tuple(layers) != tuple(layer_names()):
            parts += ["--layers", *layers]
        base = EvalConfig.from_options(quick=self.quick, dataset=dataset)
        parts += command_flags(self.options(), self.option_values(), base.option_values())
        return " ".join(parts + ([] if results_dir is None else ["--results-dir", str(results_dir)]))


# Protocol presets a study names (``Study.protocol``): the options each changes from the full protocol. "cpu-study":
# the redone Fashion-MNIST study's, sized for a 2-core CPU (docs/studies/fashion-mnist.md).
PRESETS = {
    "full": {},
    "cpu-study": {"attacks": ("pgd", "autoattack", "square", "nes"), "n_eval": 50, "steps": 20, "audit_n": 10,
                  "query_n": 10, "square_queries": 1000, "nes_modes": ("untargeted",), "nes_momenta": (0.9,),
                  "nes_samples": 50, "nes_steps": 40, "adaptive_steps": 20,
                  "adaptive_schedule": ((0, 10), (5, 50), (10, 200)), "minimal_norms": ("linf",), "check_n": 50},
}


def protocol(preset, *, dataset, **changes):
    """The ``EvalConfig`` of ``preset`` ("quick", or one of ``PRESETS``) on ``dataset``, with ``changes``."""
    if preset == "quick":
        return EvalConfig.from_options(quick=True, dataset=dataset, **changes)
    if preset not in PRESETS:
        raise ConfigError("protocol", f"must be quick or one of {', '.join(PRESETS)}, got {preset!r}")
    return EvalConfig.from_options(dataset=dataset, **{**PRESETS[preset], **changes})


def quick_preset():
    """``{option key: value}`` of --quick, every attack's own included."""
    keys = {(option.owner, option.name): option.key for option in EvalConfig.options() if option.owner}
    return {**QUICK, **{keys[name, field_name]: value for name, settings in attack_settings().items()
                        for field_name, value in settings.quick.items()}}


def as_lists(value):
    if isinstance(value, dict):
        return {key: as_lists(item) for key, item in value.items()}
    return [as_lists(item) for item in value] if isinstance(value, (tuple, list)) else value
