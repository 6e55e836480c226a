"""The parts of a result record (``records.record.ResultRecord``): frozen dataclasses, each with its JSON
object (``to_json``) and its checked way back (``read``), and the ``FieldReader`` that checks a file's fields.

Every check names the file and the field: a hand-edited or foreign file fails here before it can mislabel a figure.
"""
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path

from common import stats
from common.errors import FileProblem
from models import model_class
from evaluation.minimal import (ATTACK_PREFIX, BISECTION_METHOD, CENSORED, CLEAN, FAB_METHOD, NORMS, json_value,
                                json_values, median_correct, methods_of, robust_accuracy_curve)

CHECK_STATUSES = ("passed", "failed", "not_run")
MINIMAL_METHODS = (CLEAN, FAB_METHOD, BISECTION_METHOD, CENSORED)
# float slack on "within the search limit": sizes are measured in float64 on float32 images
LIMIT_SLACK = 1e-5
SHA256 = re.compile(r"[0-9a-f]{64}")

def known_model(name):
    try:
        model_class(name)
    except ValueError:
        return False
    return True


class FieldReader:
    """Checks one file's content; every problem is a FileProblem naming the file and the bad field."""

    def __init__(self, path):
        self.path = Path(path)

    def fail(self, problem):
        raise FileProblem(f"{self.path} is not a valid result file ({problem}); move it out of {self.path.parent} or "
                          f"evaluate its model again", "results_dir")

    def require(self, condition, problem):
        if not condition:
            self.fail(problem)

    def number(self, value, where, low=None, high=None, nullable=False):
        if value is None and nullable:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        bounds = f" in [{low:g}, {high:g}]" if high is not None else (f" >= {low:g}" if low is not None else "")
        self.require(ok, f"{where} must be a number{bounds}{' or null' if nullable else ''}, got {value!r}")
        return float(value)

    def count(self, value, where, nullable=False):
        if value is None and nullable:
            return None
        self.require(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                     f"{where} must be a non-negative integer, got {value!r}")
        return value

    def flag(self, value, where, nullable=False):
        self.require(isinstance(value, bool) or (nullable and value is None),
                     f"{where} must be true or false{' or null' if nullable else ''}, got {value!r}")
        return value

    def text(self, value, where, nullable=False):
        self.require(isinstance(value, str) or (nullable and value is None),
                     f"{where} must be a string{' or null' if nullable else ''}, got {value!r}")
        return value

    def mapping(self, value, where):
        self.require(isinstance(value, dict), f"{where} must be an object, got {type(value).__name__}")
        return value

    def listing(self, value, where, length=None):
        self.require(isinstance(value, list) and (length is None or len(value) == length),
                     f"{where} must be a list" + (f" of {length} values" if length is not None else "")
                     + f", got {type(value).__name__}" + (f" of {len(value)}" if isinstance(value, list) else ""))
        return value

    def present(self, raw, key, where=None):
        """``raw[key]`` (``where``: the object's own field name, None at the top), a FileProblem naming the field
        where the key is absent (null is a value: the field's own check decides)."""
        self.require(key in raw, f"{f'{where}.' if where else ''}{key} is missing")
        return raw[key]


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
    """A record part: its JSON object holds its fields under their own names, in field order."""

    def to_json(self):
        return {f.name: part_json(getattr(self, f.name)) for f in fields(self)}


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

    @classmethod
    def read(cls, r, raw, where):
        values = {name: r.number(r.present(raw, name, where), f"{where}.{name}", low=0, nullable=True)
                  for name in QUERY_FIELDS[:-1]}
        return cls(**values, max_queries=r.count(r.present(raw, "max_queries", where), f"{where}.max_queries",
                                                 nullable=True))


QUERY_FIELDS = tuple(f.name for f in fields(QueryStats))


@dataclass(frozen=True)
class AttackResult:
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
        """The entry of a run of ``attack`` (an ``attacks.base.Attack``) from ``evaluation.metrics.attack_metrics``'
        numbers."""
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
        entry = {f.name: part_json(getattr(self, f.name)) for f in fields(self) if f.name != "queries"}
        return {**entry, **(self.queries.to_json() if self.queries else {})}

    @classmethod
    def read(cls, r, key, raw):
        where = f"attacks.{key}"
        raw = r.mapping(raw, where)
        n = r.count(r.present(raw, "n", where), f"{where}.n")
        counts = {name: r.count(r.present(raw, name, where), f"{where}.{name}")
                  for name in ("n_correct", "n_success", "n_success_correct")}
        r.require(counts["n_correct"] <= n, f"{where}.n_correct exceeds n")
        r.require(counts["n_success"] <= n, f"{where}.n_success exceeds n")
        r.require(counts["n_success_correct"] <= min(counts["n_correct"], counts["n_success"]),
                  f"{where}.n_success_correct exceeds n_correct or n_success")
        rates = {}
        for name in ("success_rate_all", "success_rate_correct", "robust_acc"):
            # a rate over no images is undefined (null): all of them when n == 0, the correct ones when n_correct == 0
            empty = n == 0 or (name == "success_rate_correct" and counts["n_correct"] == 0)
            rates[name] = r.number(r.present(raw, name, where), f"{where}.{name}", low=0, high=1, nullable=empty)
        has_queries = [name in raw for name in QUERY_FIELDS]
        r.require(all(has_queries) or not any(has_queries),
                  f"{where} must hold all of {', '.join(QUERY_FIELDS)} or none of them")
        return cls(attack=r.text(r.present(raw, "attack", where), f"{where}.attack"),
                   title=r.text(r.present(raw, "title", where), f"{where}.title"),
                   threat_model=r.text(r.present(raw, "threat_model", where), f"{where}.threat_model"),
                   reference=r.flag(r.present(raw, "reference", where), f"{where}.reference"),
                   settings=dict(r.mapping(r.present(raw, "settings", where), f"{where}.settings")),
                   targeted=r.flag(r.present(raw, "targeted", where), f"{where}.targeted"),
                   n=n, **counts, **rates,
                   denominators=r.text(r.present(raw, "denominators", where), f"{where}.denominators"),
                   queries=QueryStats.read(r, raw, where) if all(has_queries) else None)


ATTACK_NUMBERS = ("n", "n_correct", "n_success", "n_success_correct", "success_rate_all", "success_rate_correct",
                  "robust_acc")


@dataclass(frozen=True)
class Check(_Part):
    """One sanity check's outcome (``evaluation.checks``)."""

    name: str
    status: str  # passed, failed or not_run
    detail: str

    @classmethod
    def read(cls, r, raw):
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

    @classmethod
    def read(cls, r, raw):
        raw = r.mapping(raw, "checkpoint")
        sha256 = r.text(r.present(raw, "sha256", "checkpoint"), "checkpoint.sha256")
        r.require(SHA256.fullmatch(sha256), f"checkpoint.sha256 must be 64 hex digits, got {sha256!r}")
        metadata = r.mapping(r.present(raw, "metadata", "checkpoint"), "checkpoint.metadata")
        recipe = r.mapping(metadata.get("recipe"), "checkpoint.metadata.recipe")
        r.require(isinstance(recipe.get("model"), str) and known_model(recipe["model"]),
                  f"unknown model {recipe.get('model')!r}")
        r.number(metadata.get("final_train_loss"), "checkpoint.metadata.final_train_loss", low=0, nullable=True)
        return cls(r.text(r.present(raw, "path", "checkpoint"), "checkpoint.path"), sha256, metadata)


@dataclass(frozen=True)
class WorstCase(_Part):
    """Per image over everything that attacked it (as RobustBench reports): robust only if every attack run on it
    failed and its L-inf eps*, where measured, exceeds eps."""

    n: int
    n_robust: int
    robust_acc: float  # over all n evaluated images
    attacks: tuple  # the run keys (and eps_star_linf) it is over
    all_attacks_n: int  # the images every attack ran on
    all_attacks_robust_acc: float | None  # over those (null when there are none)

    @classmethod
    def read(cls, r, raw):
        if raw is None:
            return None
        raw = r.mapping(raw, "worst_case")
        n = r.count(r.present(raw, "n", "worst_case"), "worst_case.n")
        n_robust = r.count(r.present(raw, "n_robust", "worst_case"), "worst_case.n_robust")
        r.require(n_robust <= n, "worst_case.n_robust exceeds n")
        attacks = r.present(raw, "attacks", "worst_case")
        r.require(isinstance(attacks, list) and all(isinstance(a, str) for a in attacks),
                  "worst_case.attacks must list attack keys")
        all_n = r.count(r.present(raw, "all_attacks_n", "worst_case"), "worst_case.all_attacks_n")
        r.require(all_n <= n, "worst_case.all_attacks_n exceeds n")
        return cls(n, n_robust, r.number(r.present(raw, "robust_acc", "worst_case"), "worst_case.robust_acc", low=0,
                                         high=1),
                   tuple(attacks), all_n,
                   r.number(r.present(raw, "all_attacks_robust_acc", "worst_case"), "worst_case.all_attacks_robust_acc",
                            low=0, high=1, nullable=all_n == 0))


@dataclass(frozen=True)
class CurvePoint(_Part):
    """Robust accuracy at one eps: a robustness curve's point (``n`` images attacked) or eps*'s (``n`` None)."""

    eps: float
    robust_acc: float
    n: int | None = None

    def to_json(self):
        return {"eps": self.eps, **({} if self.n is None else {"n": self.n}), "robust_acc": self.robust_acc}

    @classmethod
    def read(cls, r, raw, where, high=1.0, with_n=False):
        raw = r.mapping(raw, where)
        return cls(r.number(r.present(raw, "eps", where), f"{where}.eps", low=0, high=high),
                   r.number(r.present(raw, "robust_acc", where), f"{where}.robust_acc", low=0, high=1),
                   r.count(r.present(raw, "n", where), f"{where}.n") if with_n else None)


@dataclass(frozen=True)
class Median(_Part):
    median: float | None  # null: censored (past the search limit)
    median_censored: bool

    @classmethod
    def of(cls, values):
        """Of per-image values (a tensor, inf = censored)."""
        median = stats.median(values.tolist())
        return cls(json_value(median), math.isinf(median))

    @classmethod
    def read(cls, r, raw, where, within):
        raw = r.mapping(raw, where)
        median = r.number(r.present(raw, "median", where), f"{where}.median", low=0, high=within, nullable=True)
        r.require(r.present(raw, "median_censored", where) is (median is None),
                  f"{where}.median_censored must say whether the median is null")
        return cls(median, median is None)


@dataclass(frozen=True)
class Interval(_Part):
    low: float | None  # null: past the limit
    high: float | None
    level: float
    resamples: int

    @classmethod
    def read(cls, r, raw, where, within):
        raw = r.mapping(raw, where)
        return cls(*(r.number(r.present(raw, side, where), f"{where}.{side}", low=0, high=within, nullable=True)
                     for side in ("low", "high")),
                   r.number(r.present(raw, "level", where), f"{where}.level", low=0, high=1),
                   r.count(r.present(raw, "resamples", where), f"{where}.resamples"))


@dataclass(frozen=True)
class AttackEps(_Part):
    """A fixed-eps attack run's evidence on eps*: the eps it ran at and, per image, the size of its fooling example
    (None: not fooled or not attacked)."""

    eps: float
    size: tuple


@dataclass(frozen=True)
class EpsStarEntry(_Part):
    """eps* in one norm (``minimal_perturbation.{norm}``): per evaluated image (in order) the smallest perturbation
    that fools it (None: censored, not found within ``limit``; 0: misclassified clean) and the method that set it,
    with medians, a bootstrap interval and the robust-accuracy curve read off it."""

    norm: str
    limit: float
    n: int
    n_clean_misclassified: int
    n_censored: int
    n_by_method: dict  # method -> images it set
    pgd_not_converged: int  # images whose bisection did not certify its bound
    median: float | None
    median_censored: bool
    median_correct: float | None  # over the correctly classified images (None: none, or censored)
    interval: Interval
    fab: Median
    pgd: Median  # the bisection's (the name is schema 3's, when PGD drove the bisection)
    curve: tuple  # CurvePoint (n None), 0 to limit
    eps_star: tuple
    method: tuple  # clean, fab, bisection, censored or attack:<run key>
    fab_eps: tuple
    pgd_eps: tuple  # the bisection's
    attack_eps: dict  # run key -> AttackEps
    settings: dict
    eps_star_before_audit: tuple | None = None  # L-inf, where an audit ran: what the audit checks

    @classmethod
    def measured(cls, result, seed, settings, before_audit=None):
        """The entry of an ``evaluation.minimal.MinimalPerturbation``: counts, per-image values, medians with the
        bootstrap interval, the robust-accuracy curve, each fixed-eps run's per-image fooling sizes (what bounds
        eps*, so that a reader can check that none undercuts it) and the search ``settings``. ``before_audit``: eps*
        before the audit's runs joined (what the audit checks), where an audit ran."""
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

    def to_json(self):
        entry = super().to_json()
        if self.eps_star_before_audit is None:
            del entry["eps_star_before_audit"]
        return entry

    @classmethod
    def read(cls, r, norm, raw):
        """Per-image eps* within [0, limit] or null (censored), the method of each, no fixed-eps run undercutting
        it, and medians and intervals that agree with them."""
        where = f"minimal_perturbation.{norm}"
        raw = r.mapping(raw, where)
        r.require(norm in NORMS and raw.get("norm") == norm, f"{where} is not one of {', '.join(NORMS)}")
        limit = r.number(r.present(raw, "limit", where), f"{where}.limit", low=0)
        n = r.count(r.present(raw, "n", where), f"{where}.n")
        within = limit * (1 + LIMIT_SLACK)

        def per_image(field, source=raw, at=where):
            values = r.listing(r.present(source, field, at), f"{at}.{field}", n)
            return tuple(r.number(v, f"{at}.{field}[]", low=0, high=within, nullable=True) for v in values)

        eps_star, fab_eps, pgd_eps = per_image("eps_star"), per_image("fab_eps"), per_image("pgd_eps")
        runs = r.mapping(r.present(raw, "attack_eps", where), f"{where}.attack_eps")
        methods = r.present(raw, "method", where)
        allowed = set(MINIMAL_METHODS) | {ATTACK_PREFIX + key for key in runs}
        r.require(isinstance(methods, list) and len(methods) == n and set(methods) <= allowed,
                  f"{where}.method must list {n} of {', '.join(MINIMAL_METHODS)} or {ATTACK_PREFIX}<a run of "
                  f"attack_eps>")
        attack_eps = {}
        for key, run in runs.items():
            at = f"{where}.attack_eps.{key}"
            run = r.mapping(run, at)
            sizes = per_image("size", run, at)
            for index, size in enumerate(sizes):
                # the invariant: no attack the evaluation ran undercuts eps*
                star = math.inf if eps_star[index] is None else eps_star[index]
                if size is not None and star > size * (1 + LIMIT_SLACK):
                    r.fail(f"{where}.eps_star[{index}] = {star:g} exceeds the size {size:g} of the example by which "
                           f"{key} fooled that image")
            attack_eps[key] = AttackEps(r.number(r.present(run, "eps", at), f"{at}.eps", low=0, high=1), sizes)
        n_censored = r.count(r.present(raw, "n_censored", where), f"{where}.n_censored")
        r.require(n_censored == methods.count(CENSORED) == eps_star.count(None),
                  f"{where}.n_censored disagrees with its per-image values")
        n_clean = r.count(r.present(raw, "n_clean_misclassified", where), f"{where}.n_clean_misclassified")
        r.require(n_clean == methods.count(CLEAN),
                  f"{where}.n_clean_misclassified disagrees with its per-image methods")
        by_method = r.mapping(r.present(raw, "n_by_method", where), f"{where}.n_by_method")
        for name, count in by_method.items():
            r.require(r.count(count, f"{where}.n_by_method.{name}") == methods.count(name),
                      f"{where}.n_by_method.{name} disagrees with its per-image methods")
        overall = Median.read(r, raw, where, within)
        curve = r.listing(r.present(raw, "curve", where), f"{where}.curve")
        before = raw.get("eps_star_before_audit")
        return cls(
            norm=norm, limit=limit, n=n, n_clean_misclassified=n_clean, n_censored=n_censored,
            n_by_method=dict(by_method),
            pgd_not_converged=r.count(r.present(raw, "pgd_not_converged", where), f"{where}.pgd_not_converged"),
            median=overall.median, median_censored=overall.median_censored,
            median_correct=r.number(r.present(raw, "median_correct", where), f"{where}.median_correct", low=0,
                                    high=within, nullable=True),
            interval=Interval.read(r, r.present(raw, "interval", where), f"{where}.interval", within),
            fab=Median.read(r, r.present(raw, "fab", where), f"{where}.fab", within),
            pgd=Median.read(r, r.present(raw, "pgd", where), f"{where}.pgd", within),
            curve=tuple(CurvePoint.read(r, point, f"{where}.curve[]", high=within) for point in curve),
            eps_star=eps_star, method=tuple(methods), fab_eps=fab_eps, pgd_eps=pgd_eps, attack_eps=attack_eps,
            settings=dict(r.mapping(r.present(raw, "settings", where), f"{where}.settings")),
            eps_star_before_audit=None if before is None else per_image("eps_star_before_audit"))


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
    autoattack_still_correct: tuple  # bool per audited image


@dataclass(frozen=True)
class AdaptiveRun(_Part):
    """An adaptive attack on a model whose method masks gradients, at one radius (``attacks.adaptive``)."""

    attack: str
    key: str
    eps: float
    threat_model: str
    settings: dict
    n: int
    robust_acc: float


@dataclass(frozen=True)
class Audit(_Part):
    """The audit at eps* scale (``evaluation.runner.run_audit``)."""

    reference: AuditReference
    radii: tuple  # AuditRadius
    adaptive: tuple  # AdaptiveRun
    adaptive_skipped: tuple  # why an adaptive attack did not run

    @classmethod
    def read(cls, r, raw):
        if raw is None:
            return None
        raw = r.mapping(raw, "audit")
        reference = r.mapping(r.present(raw, "reference", "audit"), "audit.reference")
        radii, adaptive = r.present(raw, "radii", "audit"), r.present(raw, "adaptive", "audit")
        r.require(isinstance(radii, list) and isinstance(adaptive, list), "audit must hold lists radii and adaptive")
        skipped = r.present(raw, "adaptive_skipped", "audit")
        r.require(isinstance(skipped, list) and all(isinstance(s, str) for s in skipped),
                  "audit.adaptive_skipped must list reasons")
        return cls(
            AuditReference(r.text(r.present(reference, "source", "audit.reference"), "audit.reference.source",
                                  nullable=True),
                           r.number(r.present(reference, "median_eps_star", "audit.reference"),
                                    "audit.reference.median_eps_star", low=0, nullable=True)),
            tuple(cls._radius(r, entry) for entry in radii), tuple(cls._adaptive(r, entry) for entry in adaptive),
            tuple(skipped))

    @staticmethod
    def _radius(r, raw):
        where = "audit.radii[]"
        raw = r.mapping(raw, where)
        n = r.count(r.present(raw, "n", where), f"{where}.n")
        outcome = r.present(raw, "autoattack_still_correct", where)
        r.require(isinstance(outcome, list) and all(isinstance(v, bool) for v in outcome) and len(outcome) == n,
                  f"{where}.autoattack_still_correct must list true/false per audited image (n of them)")
        rates = {name: r.number(r.present(raw, name, where), f"{where}.{name}", low=0, high=1)
                 for name in ("autoattack_robust_acc", "eps_star_robust_acc")}
        return AuditRadius(r.number(r.present(raw, "eps", where), f"{where}.eps", low=0, high=1),
                           r.text(r.present(raw, "given", where), f"{where}.given"), n, **rates,
                           autoattack_still_correct=tuple(outcome))

    @staticmethod
    def _adaptive(r, raw):
        where = "audit.adaptive[]"
        raw = r.mapping(raw, where)
        return AdaptiveRun(r.text(r.present(raw, "attack", where), f"{where}.attack"),
                           r.text(r.present(raw, "key", where), f"{where}.key"),
                           r.number(r.present(raw, "eps", where), f"{where}.eps", low=0, high=1),
                           r.text(r.present(raw, "threat_model", where), f"{where}.threat_model"),
                           dict(r.mapping(r.present(raw, "settings", where), f"{where}.settings")),
                           r.count(r.present(raw, "n", where), f"{where}.n"),
                           r.number(r.present(raw, "robust_acc", where), f"{where}.robust_acc", low=0, high=1))
