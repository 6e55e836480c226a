"""The parts of a result record: frozen dataclasses with their JSON (``to_json``) and checked way back (``read``).
Every check names the file and the field: a hand-edited or foreign file fails here before it can mislabel a figure."""
import math
import re
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import get_args, get_origin, get_type_hints

from common import stats
from common.errors import FileProblem
from models import MODELS
from evaluation.minimal import (ATTACK_PREFIX, BISECTION_METHOD, CENSORED, CLEAN, FAB_METHOD, NORMS, json_value,
                                json_values, median_correct, methods_of, robust_accuracy_curve)

CHECK_STATUSES = ("passed", "failed", "not_run")
MINIMAL_METHODS = (CLEAN, FAB_METHOD, BISECTION_METHOD, CENSORED)
# float slack on "within the search limit": sizes are measured in float64 on float32 images
LIMIT_SLACK = 1e-5
SHA256 = re.compile(r"[0-9a-f]{64}")

class FieldReader:
    """Checks one file's content; every problem is a FileProblem naming the file and the bad field. ``limit``: the
    search limit of the eps* entry being read (the bound its per-image sizes and medians are checked against)."""

    def __init__(self, path):
        self.path = Path(path)
        self.limit = None

    def fail(self, problem):
        raise FileProblem(f"{self.path} is not a valid result file ({problem}); move it out of {self.path.parent} or "
                          f"evaluate its model again", "results_dir")

    def require(self, condition, problem):
        if not condition:
            self.fail(problem)

    def number(self, value, where, low=None, high=None, nullable=False):
        if value is None and nullable:
            return None
        if high == LIMIT:  # outside an eps* entry (a robustness curve): an L-inf budget
            high = 1.0 if self.limit is None else self.limit * (1 + LIMIT_SLACK)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        bounds = f" in [{low:g}, {high:g}]" if high is not None else (f" >= {low:g}" if low is not None else "")
        self.require(ok, f"{where} must be a number{bounds}{' or null' if nullable else ''}, got {value!r}")
        return float(value)

    def count(self, value, where):
        self.require(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                     f"{where} must be a non-negative integer, got {value!r}")
        return value

    def _typed(self, value, where, kind, what, nullable):
        self.require(isinstance(value, kind) or (nullable and value is None),
                     f"{where} must be {what}{' or null' if nullable else ''}, got {value!r}")
        return value

    def flag(self, value, where, nullable=False):
        return self._typed(value, where, bool, "true or false", nullable)

    def text(self, value, where, nullable=False):
        return self._typed(value, where, str, "a string", nullable)

    def mapping(self, value, where):
        self.require(isinstance(value, dict), f"{where} must be an object, got {type(value).__name__}")
        return value

    def listing(self, value, where, length=None):
        self.require(isinstance(value, list) and (length is None or len(value) == length),
                     f"{where} must be a list" + (f" of {length} values" if length is not None else "")
                     + f", got {type(value).__name__}" + (f" of {len(value)}" if isinstance(value, list) else ""))
        return value

    def present(self, raw, key, where=None):
        """``raw[key]``; a missing key fails naming the field (null is a value: the field's own check decides)."""
        self.require(key in raw, f"{f'{where}.' if where else ''}{key} is missing")
        return raw[key]

    def value(self, value, kind, where, bounds=(None, None)):
        """``value`` checked as ``kind``, a field annotation (float within ``bounds``, int non-negative, a part by
        its ``read``, tuples and dicts item by item; ``X | None`` may be null)."""
        origin, options = get_origin(kind), get_args(kind)
        if origin is tuple:
            return tuple(self.value(item, options[0], f"{where}[]", bounds) for item in self.listing(value, where))
        if origin is dict:
            return {key: self.value(item, options[1], f"{where}.{key}", bounds)
                    for key, item in self.mapping(value, where).items()}
        if type(None) in options:
            kind = next(option for option in options if option is not type(None))
            return None if value is None else self.value(value, kind, where, bounds)
        if isinstance(kind, type) and issubclass(kind, _Part):
            return kind.read(self, value, where)
        if kind is float:
            return self.number(value, where, *bounds)
        if kind is dict:
            return dict(self.mapping(value, where))
        return {int: self.count, bool: self.flag, str: self.text}[kind](value, where)


LIMIT = "limit"  # a bound that is the eps* entry's search limit (FieldReader.limit), with its float slack
RATE = (0, 1)


def part_json(value):
    """A part's value as JSON: dataclasses by their ``to_json``, tuples as lists, mappings copied."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (tuple, list)):
        return [part_json(v) for v in value]
    if isinstance(value, dict):
        return {key: part_json(v) for key, v in value.items()}
    return value


class _Part:
    """A record part: its fields by name in field order (one defaulting to None left out while None); ``read``
    checks each by its annotation and ``BOUNDS`` (field -> (low, high)), then the part's own ``check``."""

    BOUNDS = {}

    def to_json(self):
        return {f.name: part_json(getattr(self, f.name)) for f in fields(self)
                if not (f.default is None and getattr(self, f.name) is None)}

    @classmethod
    def read(cls, r, raw, where):
        raw = r.mapping(raw, where)
        hints = get_type_hints(cls)
        part = cls(**{f.name: r.value(r.present(raw, f.name, where), hints[f.name], f"{where}.{f.name}",
                                      cls.BOUNDS.get(f.name, (0, None)))
                      for f in fields(cls) if f.name in raw or f.default is MISSING})
        part.check(r, where)
        return part

    def check(self, r, where):
        """The part's invariants across fields (none by default)."""


@dataclass(frozen=True)
class QueryStats(_Part):
    """The query counts of an attack that counts queries (``denominators`` of its entry says over which images)."""

    median_queries: float | None  # over every successful image (initially misclassified ones at 1 query)
    mean_queries: float | None
    median_queries_all: float | None  # over all n (an image not fooled counts the queries it used)
    mean_queries_all: float | None
    median_queries_correct: float | None  # over the initially correct images it fooled (the figures' number)
    mean_queries_correct: float | None
    max_queries: int | None


QUERY_FIELDS = tuple(f.name for f in fields(QueryStats))


@dataclass(frozen=True)
class AttackResult(_Part):
    """One attack run of the evaluation (a run key of ``attacks``): what ran, and its counts and rates over the n
    images it attacked."""

    attack: str  # registry name
    title: str
    threat_model: str  # white-box / black-box
    reference: bool  # the field's reference evaluation (AutoAttack)
    settings: dict  # the attack's own settings
    targeted: bool
    n: int
    n_correct: int  # initially correctly classified
    n_success: int
    n_success_correct: int  # successes among the initially correct (= images fooled)
    success_rate_all: float | None  # n_success / n (null when n = 0)
    success_rate_correct: float | None  # n_success_correct / n_correct (null when n_correct = 0)
    robust_acc: float | None  # still predicted as the true label / n
    denominators: str
    queries: QueryStats | None = None  # attacks that count queries

    @classmethod
    def of(cls, attack, title, metrics):
        """The entry of a run of ``attack`` from ``evaluation.metrics.attack_metrics``' numbers."""
        numbers = {name: metrics[name] for name in ATTACK_NUMBERS}
        queries = QueryStats(**{name: metrics[name] for name in QUERY_FIELDS}) if "median_queries" in metrics else None
        return cls(attack.name, title, attack.threat_model, attack.reference, attack.settings(), metrics["targeted"],
                   **numbers, denominators=metrics["denominators"], queries=queries)

    @property
    def counts_queries(self):
        return self.queries is not None

    def numbers(self):
        """``{field: value}`` of every count, rate and query statistic (None: undefined or not measured)."""
        numbers = {name: getattr(self, name) for name in ATTACK_NUMBERS}
        return {**numbers, **(self.queries.to_json() if self.queries else {})}

    def to_json(self):
        entry = super().to_json()
        entry.update(entry.pop("queries", {}))  # its statistics beside the counts
        return entry

    def check(self, r, where):
        r.require(self.n_correct <= self.n, f"{where}.n_correct exceeds n")
        r.require(self.n_success <= self.n, f"{where}.n_success exceeds n")
        r.require(self.n_success_correct <= min(self.n_correct, self.n_success),
                  f"{where}.n_success_correct exceeds n_correct or n_success")
        # a rate over no images is undefined (null): all of them when n == 0, the correct ones when n_correct == 0
        for name, empty in (("success_rate_all", self.n == 0), ("success_rate_correct", self.n_correct == 0),
                            ("robust_acc", self.n == 0)):
            r.require((getattr(self, name) is None) == empty, f"{where}.{name} must be a number in [0, 1]"
                      + (" or null" if empty else "") + f", got {getattr(self, name)!r}")

    @classmethod
    def read(cls, r, raw, where):
        raw = r.mapping(raw, where)
        has_queries = [name in raw for name in QUERY_FIELDS]
        r.require(all(has_queries) or not any(has_queries),
                  f"{where} must hold all of {', '.join(QUERY_FIELDS)} or none of them")
        entry = super().read(r, {key: value for key, value in raw.items() if key not in QUERY_FIELDS}, where)
        return replace(entry, queries=QueryStats.read(r, raw, where) if all(has_queries) else None)

    BOUNDS = {name: RATE for name in ("success_rate_all", "success_rate_correct", "robust_acc")}


ATTACK_NUMBERS = ("n", "n_correct", "n_success", "n_success_correct", "success_rate_all", "success_rate_correct",
                  "robust_acc")


@dataclass(frozen=True)
class Check(_Part):
    """One sanity check's outcome (``evaluation.checks``)."""

    name: str
    status: str  # passed, failed or not_run
    detail: str

    @classmethod
    def read_all(cls, r, raw):
        ok = (isinstance(raw, list) and all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                            and c.get("status") in CHECK_STATUSES and isinstance(c.get("detail"), str)
                                            for c in raw))
        r.require(ok, "checks must be a list of {name, status: passed|failed|not_run, detail}")
        return tuple(cls(c["name"], c["status"], c["detail"]) for c in raw)


@dataclass(frozen=True)
class CheckpointInfo(_Part):
    """The checkpoint file evaluated, its hash, and its metadata (``training.checkpoint``'s own format)."""

    path: str
    sha256: str
    metadata: dict

    @property
    def recipe(self):
        return self.metadata.get("recipe") or {}

    @property
    def model(self):
        return self.recipe.get("model")

    @property
    def collapsed(self):
        return self.metadata.get("collapsed") is True

    @property
    def final_train_loss(self):
        return self.metadata.get("final_train_loss")

    def check(self, r, where):
        r.require(SHA256.fullmatch(self.sha256), f"{where}.sha256 must be 64 hex digits, got {self.sha256!r}")
        recipe = r.mapping(self.metadata.get("recipe"), f"{where}.metadata.recipe")
        r.require(recipe.get("model") in MODELS, f"unknown model {recipe.get('model')!r}")
        r.number(self.metadata.get("final_train_loss"), f"{where}.metadata.final_train_loss", low=0, nullable=True)


@dataclass(frozen=True)
class WorstCase(_Part):
    """Per image over everything that attacked it (as RobustBench reports): robust only if every attack run on it
    failed and its L-inf eps*, where measured, exceeds eps."""

    n: int
    n_robust: int
    robust_acc: float  # over all n evaluated images
    attacks: tuple[str, ...]  # the run keys (and eps_star_linf) it is over
    all_attacks_n: int  # the images every attack ran on
    all_attacks_robust_acc: float | None  # over those (null when there are none)

    BOUNDS = {"robust_acc": RATE, "all_attacks_robust_acc": RATE}

    def check(self, r, where):
        r.require(self.n_robust <= self.n, f"{where}.n_robust exceeds n")
        r.require(self.all_attacks_n <= self.n, f"{where}.all_attacks_n exceeds n")
        r.require((self.all_attacks_robust_acc is None) == (self.all_attacks_n == 0),
                  f"{where}.all_attacks_robust_acc must be null exactly where all_attacks_n is 0")


@dataclass(frozen=True)
class CurvePoint(_Part):
    """Robust accuracy at one eps: a robustness curve's point (``n`` images attacked) or eps*'s (``n`` None)."""

    eps: float
    robust_acc: float
    n: int | None = None

    def to_json(self):
        return {"eps": self.eps, **({} if self.n is None else {"n": self.n}), "robust_acc": self.robust_acc}

    BOUNDS = {"robust_acc": RATE, "eps": (0, LIMIT)}


@dataclass(frozen=True)
class Median(_Part):
    median: float | None  # null: censored (past the search limit)
    median_censored: bool

    @classmethod
    def of(cls, values):
        """Of per-image values (a tensor, inf = censored)."""
        median = stats.median(values.tolist())
        return cls(json_value(median), math.isinf(median))

    BOUNDS = {"median": (0, LIMIT)}

    def check(self, r, where):
        r.require(self.median_censored is (self.median is None),
                  f"{where}.median_censored must say whether the median is null")


@dataclass(frozen=True)
class Interval(_Part):
    low: float | None  # null: past the limit
    high: float | None
    level: float
    resamples: int

    BOUNDS = {"low": (0, LIMIT), "high": (0, LIMIT), "level": RATE}


@dataclass(frozen=True)
class AttackEps(_Part):
    """A fixed-eps attack run's evidence on eps*: the eps it ran at and, per image, the size of its fooling example
    (None: not fooled or not attacked)."""

    eps: float
    size: tuple[float | None, ...]

    BOUNDS = {"eps": RATE, "size": (0, LIMIT)}


@dataclass(frozen=True)
class EpsStarEntry(_Part):
    """eps* in one norm: per evaluated image the smallest perturbation that fools it (None: censored past
    ``limit``; 0: misclassified clean) and the method that set it, with medians, interval and curve read off it."""

    norm: str
    limit: float
    n: int
    n_clean_misclassified: int
    n_censored: int
    n_by_method: dict[str, int]  # method -> images it set
    pgd_not_converged: int  # images whose bisection did not certify its bound
    median: float | None
    median_censored: bool
    median_correct: float | None  # over the correctly classified images (None: none, or censored)
    interval: Interval
    fab: Median
    pgd: Median  # the bisection's (the name is schema 3's, when PGD drove the bisection)
    curve: tuple[CurvePoint, ...]  # n None, 0 to limit
    eps_star: tuple[float | None, ...]
    method: tuple[str, ...]  # clean, fab, bisection, censored or attack:<run key>
    fab_eps: tuple[float | None, ...]
    pgd_eps: tuple[float | None, ...]  # the bisection's
    attack_eps: dict[str, AttackEps]  # run key
    settings: dict
    eps_star_before_audit: tuple[float | None, ...] | None = None  # L-inf, where an audit ran: what the audit checks

    @classmethod
    def measured(cls, result, seed, settings, before_audit=None):
        """The entry of an ``evaluation.minimal.MinimalPerturbation``, with each fixed-eps run's fooling sizes (so a
        reader can check that none undercuts eps*); ``before_audit``: eps* before the audit's runs joined."""
        eps_star = result.eps_star
        low, high = stats.bootstrap_median_interval(eps_star, seed=seed)
        correct = median_correct(eps_star)
        overall = Median.of(eps_star)
        return cls(
            norm=result.norm, limit=result.limit, n=len(eps_star),
            n_clean_misclassified=result.method.count(CLEAN), n_censored=result.method.count(CENSORED),
            n_by_method={name: count for name, count in methods_of(result).items() if name not in (CLEAN, CENSORED)},
            pgd_not_converged=int((~result.converged).sum()), median=overall.median,
            median_censored=overall.median_censored,
            median_correct=None if correct is None else json_value(correct),
            interval=Interval(json_value(low), json_value(high), stats.CONFIDENCE, stats.BOOTSTRAP_RESAMPLES),
            fab=Median.of(result.fab), pgd=Median.of(result.bisection),
            curve=tuple(CurvePoint(p["eps"], p["robust_acc"]) for p in robust_accuracy_curve(eps_star, result.limit)),
            eps_star=tuple(json_values(eps_star)), method=tuple(result.method),
            fab_eps=tuple(json_values(result.fab)), pgd_eps=tuple(json_values(result.bisection)),
            attack_eps={key: AttackEps(run["eps"], tuple(json_values(run["size"])))
                        for key, run in result.attacks.items()},
            settings=dict(settings),
            eps_star_before_audit=None if before_audit is None else tuple(json_values(before_audit)))

    BOUNDS = {name: (0, LIMIT) for name in ("median", "median_correct", "eps_star", "fab_eps", "pgd_eps",
                                             "eps_star_before_audit")}

    @classmethod
    def read(cls, r, raw, where):
        raw = r.mapping(raw, where)
        r.limit = r.number(r.present(raw, "limit", where), f"{where}.limit", low=0)
        entry = super().read(r, raw, where)
        r.limit = None
        return entry

    def check(self, r, where):
        n, methods = self.n, self.method
        for name in ("eps_star", "fab_eps", "pgd_eps", "method"):
            r.listing(list(getattr(self, name)), f"{where}.{name}", n)
        r.require(self.norm in NORMS and where.endswith(f".{self.norm}"), f"{where} is not one of {', '.join(NORMS)}")
        allowed = set(MINIMAL_METHODS) | {ATTACK_PREFIX + key for key in self.attack_eps}
        r.require(set(methods) <= allowed, f"{where}.method must list {n} of {', '.join(MINIMAL_METHODS)} or "
                                           f"{ATTACK_PREFIX}<a run of attack_eps>")
        r.require(self.n_censored == methods.count(CENSORED) == self.eps_star.count(None),
                  f"{where}.n_censored disagrees with its per-image values")
        r.require(self.n_clean_misclassified == methods.count(CLEAN),
                  f"{where}.n_clean_misclassified disagrees with its per-image methods")
        for name, count in self.n_by_method.items():
            r.require(count == methods.count(name), f"{where}.n_by_method.{name} disagrees with its per-image methods")
        Median.check(self, r, where)
        for key, run in self.attack_eps.items():  # the invariant: no attack the evaluation ran undercuts eps*
            r.listing(list(run.size), f"{where}.attack_eps.{key}.size", self.n)
            for index, (size, star) in enumerate(zip(run.size, self.eps_star)):
                star = math.inf if star is None else star
                if size is not None and star > size * (1 + LIMIT_SLACK):
                    r.fail(f"{where}.eps_star[{index}] = {star:g} exceeds the size {size:g} of the example by which "
                           f"{key} fooled that image")


@dataclass(frozen=True)
class AuditReference(_Part):
    source: str | None  # whose median eps* the radii's multiples scale (None: no multiple)
    median_eps_star: float | None


@dataclass(frozen=True)
class AuditRadius(_Part):
    """AutoAttack at one audit radius on the first n evaluated images, against eps* before the audit."""

    eps: float
    given: str  # the radius as the user gave it (a number, or a multiple of the reference median)
    n: int
    autoattack_robust_acc: float
    eps_star_robust_acc: float
    autoattack_still_correct: tuple[bool, ...]  # per audited image

    BOUNDS = {"eps": RATE, "autoattack_robust_acc": RATE, "eps_star_robust_acc": RATE}

    def check(self, r, where):
        r.require(len(self.autoattack_still_correct) == self.n,
                  f"{where}.autoattack_still_correct must list true/false per audited image (n of them)")


@dataclass(frozen=True)
class AdaptiveRun(_Part):
    """An adaptive attack on a model whose method masks gradients, at one radius (``attacks.adaptive``)."""

    attack: str
    key: str
    eps: float
    threat_model: str
    settings: dict
    n: int
    robust_acc: float  # over its n images, an image broken before it counting as broken
    n_attacked: int | None = None  # the images nothing broke at its radius before it (None: records before issue 42)

    BOUNDS = {"eps": RATE, "robust_acc": RATE}


@dataclass(frozen=True)
class Audit(_Part):
    """The audit at eps* scale (``evaluation.model.ModelEvaluation.audit``)."""

    reference: AuditReference
    radii: tuple[AuditRadius, ...]
    adaptive: tuple[AdaptiveRun, ...]
    adaptive_skipped: tuple[str, ...]  # why an adaptive attack did not run
