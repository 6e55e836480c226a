"""Result records: one JSON file per evaluated variant (its summary rows: ``evaluation.summary``).

This module is the only writer and the only reader of result files: ``--mode eval`` writes and re-reads them,
``--mode vis`` reads them. A record is a ``ResultRecord`` of frozen parts (``AttackResult``, ``EpsStarEntry``,
``Audit``, ...); ``ResultRecord.to_json`` is a file's content and ``ResultRecord.from_json`` the one way back,
checking the whole record (identity, numbers, ranges, per-image values against their counts), so a hand-edited or
foreign file is named, with the field, before it can mislabel a figure. A record is checked the same way before it
is written. A JSON file this project did not write (no ``format`` tag of ours) is skipped with a warning naming it;
a file of an older schema is refused with the command that migrates it (``evaluation.migrate``).
"""
import json
import math
import re
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

from common import stats
from common.errors import FileProblem
from common.io import atomic_write_text
from data.registry import DATASETS
from evaluation.minimal import (ATTACK_PREFIX, BISECTION_METHOD, CENSORED, CLEAN, FAB_METHOD, NORMS, json_value,
                                json_values, median_correct, methods_of, robust_accuracy_curve)
from evaluation.summary import summary_csv
from models import layer_names, model_class
from sparsity.methods import BASELINE
from sparsity.variants import Variant
from training.adversarial import ADV_TRAININGS

FORMAT = "sparsity-robustness/result"
# 2: format tag, check status, query_indices, eval_config without nes_eps/nes_alpha; 3: dataset; 4: eps* as the
# minimum over all evidence (methods "bisection" and "attack:<run key>", attack_eps, eps_star_before_audit), audit.
# Only the current version is read; ``python -m evaluation.migrate`` rewrites files of versions 2 and 3 once.
SCHEMA_VERSION = 4
MIGRATE_COMMAND = "python -m evaluation.migrate"
SUMMARY_NAME = "summary.csv"
CHECK_STATUSES = ("passed", "failed", "not_run")
# The eval_config keys that readers use (figure and table titles: the protocol's eps; the --quick label). The rest
# is recorded as run and compared whole (evaluation.runner.is_up_to_date), never read key by key.
EVAL_CONFIG_READ = ("eps", "quick")
MINIMAL_METHODS = (CLEAN, FAB_METHOD, BISECTION_METHOD, CENSORED)
# float slack on "within the search limit": sizes are measured in float64 on float32 images
LIMIT_SLACK = 1e-5
SHA256 = re.compile(r"[0-9a-f]{64}")


class _Reader:
    """Checks one file's content; every problem is a FileProblem naming the file and the bad field."""

    def __init__(self, path, folder_method):
        self.path = Path(path)
        self.folder_method = folder_method

    def fail(self, problem):
        raise FileProblem(f"{self.path} is not a valid result file ({problem}); move it out of {self.path.parent} or "
                          f"evaluate its variant again", "results_dir")

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


def _json(value):
    """A part's value as JSON: dataclasses by their ``to_json``, tuples as lists, mappings copied."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {key: _json(v) for key, v in value.items()}
    return value


class _Part:
    """A record part: its JSON object holds its fields under their own names, in field order."""

    def to_json(self):
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}


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
        entry = {f.name: _json(getattr(self, f.name)) for f in fields(self) if f.name != "queries"}
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
        r.require(isinstance(recipe.get("model"), str) and _known_model(recipe["model"]),
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
    """An adaptive attack on a k-WTA model at one radius (``attacks.adaptive``)."""

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


@dataclass(frozen=True)
class Evaluation:
    """What evaluating one model gives (``evaluation.runner.evaluate_model``): every part of its record but the
    identity (data set, results folder, variant, checkpoint)."""

    clean_acc: float  # over the whole test set
    learned: bool | None  # at least 5 points above chance (None in files from before it was recorded)
    n_test: int
    sparsity: dict  # layer -> fraction of exact zeros of its output activation over the test set
    worst_case: WorstCase | None  # None without any attack or eps*
    attacks: dict  # run key -> AttackResult, in the order eval ran them
    curves: dict  # run key -> tuple of CurvePoint (with --eps-sweep; {} without)
    minimal: dict  # norm -> EpsStarEntry; {} if not measured
    audit: Audit | None  # the audit at eps* scale (None without an L-inf eps*)
    images_sha256: str | None  # identity of the evaluated images and labels (pairs per-image values of two records)
    checks: tuple  # Check, in run order
    timings: dict  # seconds per part
    query_indices: tuple  # the evaluated images (test set indices) the query-based attacks got
    eval_config: dict  # every setting as run (EVAL_CONFIG_READ: the keys readers use)

    @property
    def failed_checks(self):
        return tuple(check.name for check in self.checks if check.status == "failed")


# the JSON keys of fields whose Python name differs
_KEYS = {"sparsity": "activation_sparsity", "curves": "robustness_curves", "minimal": "minimal_perturbation",
         "images_sha256": "eval_images_sha256"}


@dataclass(frozen=True)
class ResultRecord(Evaluation):
    """One result file: the variant evaluated, where its checkpoint came from, and its ``Evaluation``."""

    path: Path  # the file
    dataset: str  # registry name of the data set it was evaluated on
    method: str  # the results folder it sits in (the baseline's record sits in each method's folder)
    variant: Variant
    checkpoint: CheckpointInfo

    @classmethod
    def of(cls, evaluation, path, dataset, method, variant, checkpoint):
        return cls(**{f.name: getattr(evaluation, f.name) for f in fields(Evaluation)}, path=Path(path),
                   dataset=dataset, method=method, variant=variant, checkpoint=checkpoint)

    @property
    def model(self):
        return self.checkpoint.model

    @property
    def collapsed(self):
        return self.checkpoint.collapsed

    @property
    def layer_names(self):
        return layer_names(self.model)

    def to_json(self):
        """The file's content (strict JSON once dumped: a NaN or infinity is a bug)."""
        document = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "dataset": self.dataset,
                    "method": self.method, "variant": self.variant.to_record(), "checkpoint": self.checkpoint.to_json()}
        for name in ("clean_acc", "learned", "n_test", "sparsity", "worst_case", "attacks", "curves", "minimal",
                     "audit", "images_sha256", "checks", "timings", "query_indices", "eval_config"):
            document[_KEYS.get(name, name)] = _json(getattr(self, name))
        return document

    @classmethod
    def from_json(cls, data, path, folder_method):
        """The record of a parsed result file ``path`` in the ``folder_method`` results folder, every field
        checked: a FileProblem names the file and the first bad field; one of an older schema names the command
        that migrates it."""
        r = _Reader(path, folder_method)
        r.require(isinstance(data, dict), f"not a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if isinstance(version, int) and not isinstance(version, bool) and 2 <= version < SCHEMA_VERSION:
            raise FileProblem(f"{r.path} is a result file of schema {version} and this code reads only schema "
                              f"{SCHEMA_VERSION}: migrate it once with: {MIGRATE_COMMAND} {r.path.parent}",
                              "results_dir")
        r.require(version == SCHEMA_VERSION, f"schema_version {version!r}, this code reads {SCHEMA_VERSION} (version 1 "
                                             f"files: evaluate the variant again)")
        r.require(data.get("format") == FORMAT, f"format {data.get('format')!r} is not {FORMAT}")
        r.require(data.get("method") == r.folder_method,
                  f"method {data.get('method')!r} but it sits in a {r.folder_method} results folder")
        checkpoint = CheckpointInfo.read(r, r.present(data, "checkpoint"))
        model = checkpoint.model
        dataset = r.present(data, "dataset")
        r.require(dataset in DATASETS, f"dataset {dataset!r} is not one of {', '.join(DATASETS)}")
        stored = checkpoint.recipe.get("dataset")
        r.require(stored in (None, dataset), f"dataset {dataset!r} but its checkpoint was trained on {stored!r}")
        variant = _variant(r, r.present(data, "variant"), model)
        sparsity = r.mapping(r.present(data, "activation_sparsity"), "activation_sparsity")
        unknown = sorted(set(sparsity) - set(layer_names(model)))
        r.require(not unknown, f"activation_sparsity has unknown layer {unknown[:1]}")
        attacks = r.mapping(r.present(data, "attacks"), "attacks")
        curves = r.mapping(r.present(data, "robustness_curves"), "robustness_curves")
        minimal = r.mapping(r.present(data, "minimal_perturbation"), "minimal_perturbation")
        images = r.text(r.present(data, "eval_images_sha256"), "eval_images_sha256", nullable=True)
        r.require(images is None or SHA256.fullmatch(images),
                  f"eval_images_sha256 must be 64 hex digits, got {images!r}")
        timings = r.mapping(r.present(data, "timings"), "timings")
        indices = r.listing(r.present(data, "query_indices"), "query_indices")
        return cls(
            path=r.path, dataset=dataset, method=r.folder_method, variant=variant, checkpoint=checkpoint,
            clean_acc=r.number(r.present(data, "clean_acc"), "clean_acc", low=0, high=1),
            learned=r.flag(r.present(data, "learned"), "learned", nullable=True),
            n_test=r.count(r.present(data, "n_test"), "n_test"),
            sparsity={layer: r.number(value, f"activation_sparsity.{layer}", low=0, high=1)
                      for layer, value in sparsity.items()},
            worst_case=WorstCase.read(r, r.present(data, "worst_case")),
            attacks={key: AttackResult.read(r, key, value) for key, value in attacks.items()},
            curves={key: tuple(CurvePoint.read(r, point, f"robustness_curves.{key}[]", with_n=True)
                               for point in r.listing(points, f"robustness_curves.{key}"))
                    for key, points in curves.items()},
            minimal={norm: EpsStarEntry.read(r, norm, entry) for norm, entry in minimal.items()},
            audit=Audit.read(r, r.present(data, "audit")),
            images_sha256=images,
            checks=Check.read(r, r.present(data, "checks")),
            timings={name: r.number(value, f"timings.{name}", low=0) for name, value in timings.items()},
            query_indices=tuple(r.count(index, "query_indices[]") for index in indices),
            eval_config=_eval_config(r, r.present(data, "eval_config")))


def _eval_config(r, raw):
    """The settings as run: an object whose EVAL_CONFIG_READ keys are what readers take them to be."""
    raw = r.mapping(raw, "eval_config")
    eps, quick = (r.present(raw, key, "eval_config") for key in EVAL_CONFIG_READ)
    r.number(eps, "eval_config.eps", low=0, high=1)
    r.flag(quick, "eval_config.quick")
    return dict(raw)


def _variant(r, raw, model):
    raw = r.mapping(raw, "variant")
    method = raw.get("method")
    r.require(method in (BASELINE, r.folder_method),
              f"variant method {method!r} does not belong in a {r.folder_method} results folder")
    layer = raw.get("layer")
    if method == BASELINE:
        r.require(layer is None, "the standard baseline must have layer null")
    else:
        known = layer_names(model)
        r.require(layer in known, f"variant layer {layer!r} is not one of {' '.join(known)}")
    adv, adv_eps = raw.get("adv"), raw.get("adv_eps")
    r.require(adv is None or (adv in ADV_TRAININGS and isinstance(adv_eps, float) and 0 < adv_eps <= 1),
              f"variant adversarial training {adv!r} at eps {adv_eps!r} is not one of "
              f"{' '.join(ADV_TRAININGS)} at an eps in (0, 1]")
    variant = Variant(method, layer, r.number(raw.get("strength"), "variant.strength", low=0),
                      r.count(raw.get("seed"), "variant.seed"), adv, adv_eps if adv else None)
    # The file name is the identity: two files claiming one variant would be averaged twice as seeds.
    r.require(r.path.stem == variant.name, f"it holds variant {variant.name} but is named {r.path.name}")
    r.require(raw.get("name") == variant.name, f"variant.name {raw.get('name')!r} is not {variant.name}")
    return variant


def _known_model(name):
    try:
        model_class(name)
    except ValueError:
        return False
    return True


def is_ours(data):
    """Whether a parsed JSON document claims to be one of this project's result files."""
    return isinstance(data, dict) and (data.get("format") == FORMAT or ("schema_version" in data and "variant" in data))


def _load_json(path, reader):
    """The parsed JSON of ``path``; a file that is not UTF-8 JSON fails through ``reader``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        reader.fail("not UTF-8 text")
    except json.JSONDecodeError as err:
        reader.fail(f"malformed JSON: {err.msg} at line {err.lineno}")
    except OSError as err:
        raise FileProblem(f"cannot read {path}: {err.strerror}; fix its permissions or move it out of "
                          f"{Path(path).parent}", "results_dir") from None


def read_record(path, folder_method):
    """The validated record in ``path``; FileProblem naming the file when it is unreadable or not a valid record."""
    reader = _Reader(path, folder_method)
    data = _load_json(path, reader)
    reader.require(is_ours(data), "not a result file of this project (no format tag)")
    return ResultRecord.from_json(data, path, folder_method)


def write_record(record):
    """Write ``record`` to ``record.path`` atomically, after checking it as a reader will (a record that would not
    read back is a bug, and never reaches the file); returns the record as read back."""
    text = json.dumps(record.to_json(), indent=2, allow_nan=False)
    written = ResultRecord.from_json(json.loads(text), record.path, record.method)
    atomic_write_text(record.path, text + "\n", location="results_dir")
    return written


def result_paths(method_dir):
    """Candidate result files of a folder (hidden files are editor or atomic-write leftovers)."""
    folder = Path(method_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if p.is_file() and not p.name.startswith("."))


class RecordFolder:
    """The result records of one folder, held in memory.

    A file is read when it is new or has changed since (size, modification time, inode), so that results other
    processes write into the folder (a job array's other tasks) are seen, while a record this process writes
    (``write``) is taken from memory: rebuilding summary.csv after every variant reads only what is new.
    JSON files this project did not write are skipped with one warning naming them (``warn(message)``, default
    ``warnings.warn``); a file of ours that is malformed is a FileProblem naming it, and so is a record of another
    data set than ``dataset`` (None: than the folder's first record).
    """

    def __init__(self, method_dir, folder_method, warn=None, dataset=None):
        self.method_dir = Path(method_dir)
        self.folder_method = folder_method
        self.warn = warn
        self.dataset = dataset
        self._files = {}  # path -> (stamp, its ResultRecord, or None for a file that is not ours)
        self._warned = set()  # foreign files already named

    @staticmethod
    def _stamp(path):
        status = path.stat()
        return status.st_mtime_ns, status.st_size, status.st_ino

    def _entry(self, path):
        stamp = self._stamp(path)
        known = self._files.get(path)
        if known is None or known[0] != stamp:
            reader = _Reader(path, self.folder_method)
            data = _load_json(path, reader)
            record = ResultRecord.from_json(data, path, self.folder_method) if is_ours(data) else None
            known = self._files[path] = (stamp, record)
        return known

    def records(self):
        """Every result record in the folder, in table order."""
        present = {path: self._entry(path) for path in result_paths(self.method_dir)}
        foreign = [path for path, (_, record) in present.items() if record is None and path not in self._warned]
        self._files = present
        if foreign:
            self._warned.update(foreign)
            names = ", ".join(path.name for path in foreign)
            message = f"{self.method_dir} holds JSON files that are not result files, skipped: {names}"
            if self.warn is None:
                warnings.warn(message, stacklevel=3)
            else:
                self.warn(message)
        records = [record for _, record in present.values() if record is not None]
        require_one_dataset(records, self.dataset)
        return sorted(records, key=record_order)

    def get(self, path):
        """The record in ``path`` as ``read_record`` gives it (a file that is not ours is a FileProblem), read only
        when new or changed; None when there is no such file."""
        path = Path(path)
        if not path.is_file():
            return None
        record = self._entry(path)[1]
        _Reader(path, self.folder_method).require(record is not None, "not a result file of this project (no "
                                                                      "format tag)")
        return record

    def write(self, record):
        """``write_record``, keeping the record as written in memory."""
        written = write_record(record)
        self._files[written.path] = (self._stamp(written.path), written)

    def write_summary(self):
        """Rewrite ``summary.csv`` from every record of the folder; returns its path and the records."""
        records = self.records()
        path = self.method_dir / SUMMARY_NAME
        atomic_write_text(path, summary_csv(records), location="results_dir")
        return path, records


def load_records(method_dir, folder_method, warn=None, dataset=None):
    """Every result record in ``method_dir``, in table order (see ``RecordFolder``)."""
    return RecordFolder(method_dir, folder_method, warn, dataset).records()


def require_one_dataset(records, dataset=None):
    """FileProblem naming the first record whose data set is not ``dataset`` (None: the first record's)."""
    expected = dataset or (records[0].dataset if records else None)
    for record in records:
        if record.dataset != expected:
            first = f"this run is on {expected}" if dataset else f"{records[0].path.name} is of {expected}"
            raise FileProblem(f"{record.path} holds results of {record.dataset} but {first}; results of two data sets "
                              f"never share a folder: move it to the {record.dataset} results folder", "results_dir")


def record_order(record):
    """Table order: the baseline first, then layers in forward order, then strength, then seed."""
    return variant_order(record.variant, record.layer_names)


def variant_order(variant, layers):
    layer_rank = -1 if variant.is_baseline else layers.index(variant.layer)
    return (layer_rank, variant.strength, variant.seed)


def write_summary_csv(method_dir, folder_method, warn=None, dataset=None):
    """Rewrite ``method_dir/summary.csv`` from every result record there; returns its path and the records."""
    return RecordFolder(method_dir, folder_method, warn, dataset).write_summary()
