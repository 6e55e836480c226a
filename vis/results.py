"""One method's result records, with the seeds of each variant merged into mean ± sample std.

Records come from ``evaluation.records`` (the one reader of result files).
Seeds of a variant that did not learn (clean accuracy near chance) are left
out of every mean and named instead: their robustness numbers compare noise.
"""
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from common import stats
from data.registry import DEFAULT_DATASET, get_dataset
from sparsity.methods import BASELINE, get_method
from vis.eps_star import eps_star


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


@dataclass(frozen=True)
class AttackInfo:
    """What the figures need to know about an attack run, read from its entries (never from its name)."""

    key: str
    title: str
    threat_model: str
    targeted: bool
    reference: bool
    counts_queries: bool


@dataclass(frozen=True)
class AttackSummary:
    n: tuple  # images attacked, per seed (in the order of ``seeds``)
    n_correct: tuple  # of those, initially correct, per seed
    n_fooled_correct: tuple  # of those, fooled by the attack, per seed
    n_robust: tuple  # images still correctly classified after the attack, per seed
    seeds: tuple
    fields: dict  # field -> Stat
    settings: dict  # the attack's settings (of the first seed)

    def get(self, field):
        return self.fields.get(field, MISSING)


@dataclass(frozen=True)
class VariantSummary:
    """One (method, layer, strength, training) with its learned seeds merged."""

    method: str
    layer: str | None
    strength: float
    seeds: tuple  # every seed with a result file
    not_learned_seeds: tuple  # left out of every number below
    files: tuple
    clean_acc: Stat
    n_test: tuple
    sparsity: dict  # layer -> Stat
    attacks: dict  # attack key -> AttackSummary
    curves: dict  # attack key -> {eps: Stat of robust accuracy}
    worst_case: Stat  # per-image worst case over every attack run: robust accuracy over all n
    worst_case_n: tuple  # its n, per learned seed that has it
    minimal: dict  # norm -> tuple of (seed, EpsStarEntry): the seeds' eps* entries
    seed_sparsity: tuple  # (seed, {layer: fraction of exact zeros}) of each learned seed
    images_sha256: dict  # seed -> identity of the evaluated images (for pairing with the baseline)
    collapsed_seeds: tuple
    failed_checks: tuple  # "check (seed s)"
    eps_star: dict = field(default_factory=dict)  # norm -> vis.eps_star.EpsStar (pooled, paired with the baseline)
    adv: str | None = None  # adversarial training (sparsity.variants.Variant.adv), None: standard training
    adv_eps: float | None = None

    @property
    def is_baseline(self):
        return self.method == BASELINE

    @property
    def learned(self):
        """False when no seed of the variant learned: then it is marked, never compared."""
        return len(self.not_learned_seeds) < len(self.seeds)

    @property
    def label(self):
        return BASELINE if self.is_baseline else f"{self.layer} ({get_method(self.method).strength_text(self.strength)})"

    @property
    def own_sparsity(self):
        """Sparsity of the regularised layer (the baseline has none)."""
        return MISSING if self.is_baseline else self.sparsity.get(self.layer, MISSING)

    def attack(self, key, field):
        return self.attacks[key].get(field) if key in self.attacks else MISSING


def _merge(group):
    first = group[0].spec
    learned = [r for r in group if r.learned is not False]
    attacks = {}
    for key in dict.fromkeys(key for r in learned for key in r.attacks):
        with_attack = [r for r in learned if key in r.attacks]
        entries = [r.attacks[key] for r in with_attack]
        numbers = [entry.numbers() for entry in entries]
        numeric = {field for entry in numbers for field, value in entry.items() if value is not None}
        attacks[key] = AttackSummary(
            n=tuple(e.n for e in entries), n_correct=tuple(e.n_correct for e in entries),
            n_fooled_correct=tuple(e.n_success_correct for e in entries),
            n_robust=tuple(round(e.robust_acc * e.n) if e.n else 0 for e in entries),
            seeds=tuple(r.spec.seed for r in with_attack),
            fields={field: Stat.of(e.get(field) for e in numbers) for field in sorted(numeric)},
            settings=entries[0].settings)
    curves = {}
    for r in learned:
        for key, points in r.curves.items():
            for point in points:
                curves.setdefault(key, {}).setdefault(point.eps, []).append(point.robust_acc)
    layers = group[0].layer_names
    return VariantSummary(
        method=first.method, layer=first.layer, strength=first.strength,
        seeds=tuple(r.spec.seed for r in group),
        not_learned_seeds=tuple(r.spec.seed for r in group if r.learned is False),
        files=tuple(r.path for r in group),
        clean_acc=Stat.of(r.clean_acc for r in learned),
        n_test=tuple(r.n_test for r in group),
        sparsity={layer: Stat.of(r.sparsity.get(layer) for r in learned)
                  for layer in layers if any(layer in r.sparsity for r in group)},
        attacks=attacks,
        curves={key: {eps: Stat.of(values) for eps, values in sorted(points.items())} for key, points in curves.items()},
        worst_case=Stat.of(r.worst_case.robust_acc for r in learned if r.worst_case),
        worst_case_n=tuple(r.worst_case.n for r in learned if r.worst_case),
        minimal={norm: tuple((r.spec.seed, r.minimal[norm]) for r in learned if norm in r.minimal)
                 for norm in dict.fromkeys(norm for r in learned for norm in r.minimal)},
        seed_sparsity=tuple((r.spec.seed, dict(r.sparsity)) for r in learned),
        images_sha256={r.spec.seed: r.images_sha256 for r in learned},
        collapsed_seeds=tuple(r.spec.seed for r in group if r.collapsed),
        failed_checks=tuple(f"{name} (seed {r.spec.seed})" for r in group for name in r.failed_checks),
        adv=first.adv, adv_eps=first.adv_eps,
    )


@dataclass(frozen=True)
class MethodResults:
    """All merged variants of one method's results folder, baseline first, then layer order, then strength."""

    method: str
    folder: Path
    dataset_name: str  # registry name; one per folder (evaluation.records refuses a mix)
    layer_names: tuple
    variants: tuple
    attack_info: dict  # key -> AttackInfo, in the order eval ran the attacks
    eval_configs: tuple  # every distinct eval_config of the records

    @property
    def sparsity_method(self):
        return get_method(self.method)

    @property
    def dataset(self):
        return get_dataset(self.dataset_name)

    @property
    def baseline(self):
        return next((v for v in self.variants if v.is_baseline), None)

    @property
    def layers(self):
        present = {v.layer for v in self.variants if not v.is_baseline}
        return tuple(layer for layer in self.layer_names if layer in present)

    def at_layer(self, layer):
        return [v for v in self.variants if v.layer == layer and not v.is_baseline]

    @property
    def attacks(self):
        return tuple(self.attack_info)

    def attacks_where(self, threat_model=None, targeted=None, counts_queries=None):
        return [info.key for info in self.attack_info.values()
                if (threat_model is None or info.threat_model == threat_model)
                and (targeted is None or info.targeted == targeted)
                and (counts_queries is None or info.counts_queries == counts_queries)]

    @property
    def seeds(self):
        return tuple(sorted({seed for v in self.variants for seed in v.seeds}))

    @property
    def file_count(self):
        return sum(len(v.files) for v in self.variants)

    @property
    def quick(self):
        return any(config.get("quick") for config in self.eval_configs)

    def one_per_layer(self):
        """Per layer, the variant at the default strength, else at the evaluated strength closest to it
        (in decades for methods on a log scale)."""
        method = self.sparsity_method

        def distance(v):
            if method.log_scale:
                return abs(math.log10(max(v.strength, 1e-12)) - math.log10(method.default_strength))
            return abs(v.strength - method.default_strength)

        return [min(self.at_layer(layer), key=lambda v: (distance(v), v.strength)) for layer in self.layers]

    def swept_layers(self):
        return tuple(layer for layer in self.layers if len(self.at_layer(layer)) > 1)


def _attack_info(records):
    info = {}
    for record in records:
        for key, entry in record.attacks.items():
            info.setdefault(key, AttackInfo(key, entry.title, entry.threat_model, entry.targeted, entry.reference,
                                            entry.counts_queries))
    return info


def merge_seeds(method, folder, records):
    """``MethodResults`` of ``records`` (all of one method's folder, already filtered)."""
    layers = records[0].layer_names if records else ()
    groups = {}
    for record in sorted(records, key=lambda r: r.spec.order(layers)):
        groups.setdefault((record.spec.method, record.spec.layer, record.spec.strength), []).append(record)
    configs = []
    for record in records:
        if record.eval_config not in configs:
            configs.append(record.eval_config)
    variants = [_merge(g) for g in groups.values()]
    baseline = next((v for v in variants if v.is_baseline), None)
    variants = [replace(v, eps_star={norm: summary for norm in v.minimal
                                     if (summary := eps_star(v, norm, baseline)) is not None}) for v in variants]
    dataset = records[0].dataset if records else DEFAULT_DATASET
    return MethodResults(method=method, folder=Path(folder), dataset_name=dataset, layer_names=tuple(layers),
                         variants=tuple(variants), attack_info=_attack_info(records), eval_configs=tuple(configs))


