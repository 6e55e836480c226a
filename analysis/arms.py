"""Records grouped into arms (a ``ModelSpec`` without its seed): the one grouping every table, comparison and figure
reads. The seed is the unit: every number is one seed's or a summary over seeds, never images pooled over seeds.
Seeds whose model did not learn are left out of every value and named instead: their robustness numbers compare noise.

The primary statistic is eps* over the correctly classified images: eps* is 0 for a misclassified image, so an
all-image median mixes clean error into robustness. ``train_loss`` is kept because a regulariser that fits less can
look more robust for that alone.
"""
import math
from collections import Counter
from dataclasses import dataclass, replace
from functools import cached_property

from common import stats
from common.machine import kind_of
from evaluation.minimal import CLEAN
from models import layer_names
from models.spec import ModelSpec
from sparsity.methods import METHODS

EPS_STAR_NORM = "linf"
ROBUST_ATTACK = "autoattack"


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation over the seeds that have a value (std None below 2 seeds)."""

    mean: float | None
    std: float | None
    count: int

    @classmethod
    def of(cls, values):
        values = [v for v in values if v is not None]
        return cls(stats.mean(values), stats.sample_std(values), len(values))


MISSING = Stat(None, None, 0)


def median_eps_star(entry, correct_only):
    """One seed's median eps* (inf where censored) over its images, or its correctly classified ones."""
    values = [math.inf if value is None else value for value, method in zip(entry.eps_star, entry.method)
              if not (correct_only and method == CLEAN)]
    return stats.median(values)


def seed_eps_star(record, norm=EPS_STAR_NORM, correct_only=True):
    """One seed's median eps* in ``norm`` (inf: censored), None where its record did not measure it."""
    entry = record.minimal.get(norm)
    return median_eps_star(entry, correct_only) if entry else None


def _robust_acc(record):
    attack = record.attacks.get(ROBUST_ATTACK)
    return attack.robust_acc if attack and attack.n else None


# name -> one seed's value from its record (None where the record did not measure it)
SEED_STATISTICS = {
    "eps_star_correct": seed_eps_star,
    "eps_star_all": lambda record: seed_eps_star(record, correct_only=False),
    "clean_acc": lambda record: record.clean_acc,
    "robust_acc": _robust_acc,
    "train_loss": lambda record: record.checkpoint.final_train_loss,
}


@dataclass(frozen=True)
class AttackSummary:
    """One attack run over an arm's seeds (those that ran it), seed order."""

    n: tuple  # images attacked, per seed
    n_correct: tuple  # of those, initially correct
    n_fooled_correct: tuple  # of those, fooled
    n_robust: tuple  # still correctly classified after the attack
    seeds: tuple
    fields: dict  # field -> Stat over seeds
    settings: dict  # the attack's settings (of the first seed)

    def get(self, name):
        return self.fields.get(name, MISSING)


@dataclass(frozen=True)
class Arm:
    """The learned seeds of one spec-without-seed, their records in seed order."""

    spec: ModelSpec  # seed -1
    records: tuple
    not_learned_seeds: tuple = ()
    collapsed_seeds: tuple = ()
    failed_checks: tuple = ()  # "check (seed s)", over every seed (those that did not learn too)

    @property
    def seeds(self):
        return tuple(record.spec.seed for record in self.records)

    @property
    def all_seeds(self):
        return tuple(sorted(self.seeds + self.not_learned_seeds))

    @property
    def learned(self):
        """False when no seed learned: then the arm is marked, never compared."""
        return bool(self.records)

    @cached_property
    def values(self):
        """``{statistic: per-seed values}`` of every ``SEED_STATISTICS``."""
        return {name: tuple(value(record) for record in self.records) for name, value in SEED_STATISTICS.items()}

    def subset(self, seeds):
        """The same arm restricted to ``seeds`` (a null split of a baseline)."""
        return replace(self, records=tuple(r for r in self.records if r.spec.seed in seeds), not_learned_seeds=())

    def stat(self, value):
        """Mean ± SD over the learned seeds of ``value(record)``."""
        return Stat.of(value(record) for record in self.records)

    @property
    def clean_acc(self):
        return self.stat(lambda r: r.clean_acc)

    @property
    def worst_case(self):
        return self.stat(lambda r: r.worst_case.robust_acc if r.worst_case else None)

    def sparsity(self, layer):
        return self.stat(lambda r: r.sparsity.get(layer))

    @property
    def own_sparsity(self):
        """Sparsity of the regularised layer (the baseline has none)."""
        return MISSING if self.spec.is_baseline else self.sparsity(self.spec.layer)

    @property
    def eval_configs(self):
        return list({repr(r.eval_config): r.eval_config for r in self.records}.values())

    def attack(self, key):
        """The ``AttackSummary`` of run ``key`` over the seeds that ran it, or None."""
        with_attack = [r for r in self.records if key in r.attacks]
        if not with_attack:
            return None
        entries = [r.attacks[key] for r in with_attack]
        numbers = [entry.numbers() for entry in entries]
        numeric = {name for entry in numbers for name, value in entry.items() if value is not None}
        return AttackSummary(
            n=tuple(e.n for e in entries), n_correct=tuple(e.n_correct for e in entries),
            n_fooled_correct=tuple(e.n_success_correct for e in entries),
            n_robust=tuple(round(e.robust_acc * e.n) if e.n else 0 for e in entries),
            seeds=tuple(r.spec.seed for r in with_attack),
            fields={name: Stat.of(e.get(name) for e in numbers) for name in sorted(numeric)},
            settings=entries[0].settings)

    def eps_star(self, norm, correct_only=True):
        """Per learned seed, its median eps* in ``norm`` (inf: censored; None: not measured)."""
        return tuple(seed_eps_star(record, norm, correct_only) for record in self.records)

    def eps_star_curve(self, norm):
        """``((eps, Stat), ...)``: robust accuracy read off each seed's eps* in ``norm``, summarised over seeds; ()
        where no seed measured it or the seeds searched to different limits."""
        curves = [record.minimal[norm].curve for record in self.records if norm in record.minimal]
        if not curves or len({tuple(point.eps for point in curve) for curve in curves}) > 1:
            return ()
        return tuple((points[0].eps, Stat.of(point.robust_acc for point in points)) for points in zip(*curves))

    def sweep_curve(self, key):
        """The ``--eps-sweep`` robust accuracy of run ``key``: ``{eps: Stat over the seeds that ran it}``."""
        values = {}
        for record in self.records:
            for point in record.curves.get(key, ()):
                values.setdefault(point.eps, []).append(point.robust_acc)
        return {eps: Stat.of(found) for eps, found in sorted(values.items())}

    def kinds(self):
        """``{kind of CPU: seeds}`` that evaluated the arm's models (``common.machine.kind_of``)."""
        return dict(Counter(kind_of(record.machine) for record in self.records))


def arm_order(arm):
    """Standard training first, then each training's baseline, methods in registry order, layers, strengths."""
    spec = arm.spec
    layers = layer_names(spec.model)  # the arm's architecture's, whether or not a seed learned
    method = -1 if spec.is_baseline else list(METHODS).index(spec.method)
    layer = -1 if spec.is_baseline or spec.layer not in layers else layers.index(spec.layer)
    return (spec.adv is not None, spec.adv or "", spec.adv_eps or 0.0, not spec.is_baseline, method, layer,
            spec.strength)


def group_arms(records):
    """``[Arm]`` of ``records`` (each model once), in ``arm_order``."""
    groups = {}
    for record in sorted(records, key=lambda r: r.spec.seed):
        groups.setdefault(record.spec.arm, []).append(record)
    arms = [Arm(spec, tuple(r for r in group if r.learned is not False),
                tuple(r.spec.seed for r in group if r.learned is False),
                tuple(r.spec.seed for r in group if r.collapsed),
                tuple(f"{name} (seed {r.spec.seed})" for r in group for name in r.failed_checks))
            for spec, group in groups.items()]
    return sorted(arms, key=arm_order)
