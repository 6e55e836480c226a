"""Every knob of one evaluation, in one record that validates itself."""
from dataclasses import asdict, dataclass, replace

from attacks import ATTACKS
from attacks.base import LOSSES
from attacks.nes import MODES as NES_MODES
from attacks.nes import default_query_batch, sample_schedule, validate_query_batch
from attacks.nes_adaptive import PAPER_SCHEDULE, PAPER_STEPS
from attacks.adaptive import ADAPTIVE
from evaluation.minimal import LIMIT_PER_EPS
from evaluation.minimal import NORMS as MINIMAL_NORMS
from common import validation
from common.errors import ConfigError
from data.registry import DEFAULT_DATASET, get_dataset

# --quick: few images and short attacks, so the pipeline runs end to end on a CPU in minutes.
# Explicit options still override these (the training preset is training.recipe.QUICK).
QUICK = {"attacks": ("pgd", "apgd", "square", "nes", "nes_adaptive"), "n_eval": 100, "steps": 20, "query_n": 20,
         "nes_samples": 20, "nes_steps": 20, "adaptive_steps": 20, "adaptive_schedule": ((0, 10), (5, 50), (10, 200)),
         "minimal_norms": ("linf",), "fab_steps": 50, "fab_restarts": 1, "minimal_targets": 2, "check_n": 100,
         "audit_n": 20}
AUDIT_MULTIPLES = ("0.5x", "1x", "1.5x")  # default audit radii: multiples of the reference median eps*


def audit_radius(value, field="audit_radii"):
    """``(number, is_multiple)`` of one audit radius: ``0.03`` (an L-inf eps in [0, 1]) or ``1.5x`` (a multiple of
    the reference median eps*), positive."""
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


@dataclass(frozen=True)
class EvalConfig:
    """Defaults are the protocol of docs/usage.md (Evaluate); ``to_dict()`` is the result file's ``eval_config``.
    The budget and step are the data set's (``from_options(dataset=...)``, which requires one); CIFAR-10's for a bare
    ``EvalConfig()``."""

    attacks: tuple = ("pgd", "autoattack", "square", "nes")
    eps: float = DEFAULT.eps  # L-inf budget of every attack
    alpha: float = DEFAULT.step  # step size of PGD and NES
    steps: int = 50  # PGD
    restarts: int = 1
    n_eval: int | None = None  # attack the first n_eval test images; None = all
    query_n: int = 1000  # query-based attacks (NES, Square) run on a seeded subset of query_n of those images
    square_queries: int = 5000  # Square's query budget per image (AutoAttack's)
    eps_sweep: tuple = ()  # white-box attacks also run at each of these eps (robustness curves)
    nes_steps: int = 50
    nes_samples: int = 200  # antithetic pairs per gradient estimate
    nes_sigma: float = 1 / 255
    nes_momenta: tuple = (0.0, 0.9)
    nes_modes: tuple = NES_MODES
    nes_loss: str = "ce"  # the original repository's; "margin" for the logit margin
    adaptive_steps: int = PAPER_STEPS  # nes_adaptive (Tramer et al. 2020): signed steps
    adaptive_schedule: tuple = PAPER_SCHEDULE  # nes_adaptive: (from step, antithetic pairs per estimate), increasing
    minimal_norms: tuple = MINIMAL_NORMS  # per-image minimal perturbation (eps*) in these norms; () = not measured
    minimal_limit: float | None = None  # its L-inf search limit (L2: x sqrt(d)); None = LIMIT_PER_EPS x eps
    fab_steps: int = 100  # FAB's iterations (the package's default)
    fab_restarts: int = 2  # FAB's untargeted runs for eps*: from the clean image, then from random starts
    minimal_targets: int = 3  # top classes of FAB-T and of the bisection's APGD-T
    # AutoAttack (standard) at these L-inf radii, checked against the eps* curve: eps values or multiples "1.5x" of
    # the reference median eps* (correct images; the same-seed baseline's where its record exists, else the model's)
    audit_radii: tuple = AUDIT_MULTIPLES
    audit_n: int | None = None  # the audit's AutoAttack on the first audit_n evaluated images; None = all of them
    adaptive_attacks: tuple = tuple(ADAPTIVE)  # on models with a k-WTA layer, at the audit radii, folded into eps*
    query_batch: int | None = None  # images per NES forward pass; None = the device's default
    batch_size: int = 256  # images per attack call for white-box attacks and clean evaluation
    black_box_batch_size: int = 100  # images per call of a query-based attack
    check_n: int = 500  # images used by the sanity checks that need extra attack runs
    seed: int = 0
    quick: bool = False

    @classmethod
    def from_options(cls, quick=False, *, dataset, **options):
        """EvalConfig from options where None means "not given": the --quick preset if on, else the default, with
        ``dataset``'s standard budget and step."""
        dataset = get_dataset(dataset)
        given = {key: tuple(value) if isinstance(value, list) else value
                 for key, value in options.items() if value is not None}
        config = replace(cls(), **{"eps": dataset.eps, "alpha": dataset.step, **(QUICK if quick else {}), **given,
                                    "quick": quick})
        config.validate()
        return config

    def validate(self):
        """ConfigError naming the first bad field."""
        validation.distinct(self.attacks, "attacks")
        for name in self.attacks:
            if name not in ATTACKS:
                raise ConfigError("attacks", f"has unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
        # images live in [0, 1]: an L-inf budget or step beyond 1 is a typo, not an experiment
        validation.number(self.eps, "eps", minimum=0, maximum=1)
        validation.number(self.alpha, "alpha", above=0, maximum=1)
        validation.integer(self.steps, "steps", minimum=1)
        validation.integer(self.restarts, "restarts", minimum=1)
        if self.n_eval is not None:
            validation.integer(self.n_eval, "n_eval", minimum=1)
        validation.integer(self.query_n, "query_n", minimum=1)
        validation.integer(self.square_queries, "square_queries", minimum=1)
        if self.eps_sweep:
            for eps in validation.distinct(self.eps_sweep, "eps_sweep"):
                validation.number(eps, "eps_sweep", above=0, maximum=1)
        validation.integer(self.nes_steps, "nes_steps", minimum=1)
        validation.integer(self.nes_samples, "nes_samples", minimum=1)
        validation.number(self.nes_sigma, "nes_sigma", above=0, maximum=1)
        for momentum in validation.distinct(self.nes_momenta, "nes_momenta"):
            validation.number(momentum, "nes_momenta", minimum=0, below=1)
        for mode in validation.distinct(self.nes_modes, "nes_modes"):
            validation.choice(mode, "nes_modes", NES_MODES)
        validation.choice(self.nes_loss, "nes_loss", LOSSES)
        validation.integer(self.adaptive_steps, "adaptive_steps", minimum=1)
        sample_schedule(self.adaptive_schedule, "adaptive_schedule")
        if self.minimal_norms:
            for norm in validation.distinct(self.minimal_norms, "minimal_norms"):
                validation.choice(norm, "minimal_norms", MINIMAL_NORMS)
        if self.minimal_limit is not None:
            validation.number(self.minimal_limit, "minimal_limit", above=0, maximum=1)
        validation.integer(self.fab_steps, "fab_steps", minimum=1)
        validation.integer(self.fab_restarts, "fab_restarts", minimum=1)
        validation.integer(self.minimal_targets, "minimal_targets", minimum=0)
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

    def resolved(self, device, n_test):
        """The settings as actually run on ``device`` over a test set of ``n_test`` images: image counts
        capped at what exists, the device's default query batch and the search limit filled in. This is what
        result files record."""
        n_eval = n_test if self.n_eval is None else min(self.n_eval, n_test)
        limit = self.minimal_limit or (min(1.0, LIMIT_PER_EPS * self.eps) if self.eps > 0 else 1.0)
        return replace(self, n_eval=n_eval, query_n=min(self.query_n, n_eval),
                       audit_n=n_eval if self.audit_n is None else min(self.audit_n, n_eval),
                       query_batch=self.query_batch or default_query_batch(device), minimal_limit=limit)

    def to_dict(self):
        """As JSON reads it back: tuples (also nested ones, the sample schedule's pairs) as lists."""
        return {key: as_lists(value) for key, value in asdict(self).items()}


def as_lists(value):
    return [as_lists(item) for item in value] if isinstance(value, (tuple, list)) else value
