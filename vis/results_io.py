"""Reading the result files written by ``--mode eval`` and merging seeds into mean ± std.

Every ``results/{method}/*.json`` must follow the result-file schema (TEAM.md,
schema_version 1). A file that does not is reported by name, never skipped:
a silently ignored file would make a figure look complete when it is not.
"""
import json
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from attacks.results import SCHEMA_VERSION
from common.errors import UsageError
from models.simple_cnn import LAYER_NAMES
from sparsity.variants import BASELINE, DEFAULT_STRENGTH, Variant

RATE_FIELDS = ("success_rate_all", "success_rate_correct", "robust_acc")
QUERY_FIELDS = ("median_queries", "mean_queries", "median_queries_all", "mean_queries_all",
                "median_queries_correct", "mean_queries_correct")
NES_KEY = re.compile(r"^nes_(untargeted|targeted)_m(\d+(?:\.\d+)?)$")
STRENGTH_SYMBOL = {"l1": "λ", "dropout": "p"}


def nes_attack(key):
    """``("untargeted", 0.9)`` for ``nes_untargeted_m0.9``; None for any other attack."""
    match = NES_KEY.match(key)
    return (match.group(1), float(match.group(2))) if match else None


def attack_order(key):
    """PGD first, then NES untargeted, then targeted, each by momentum; unknown attacks last."""
    if key == "pgd":
        return (0, 0.0, key)
    nes = nes_attack(key)
    if nes:
        return (1 if nes[0] == "untargeted" else 2, nes[1], key)
    return (3, 0.0, key)


def attack_title(key):
    if key == "pgd":
        return "PGD"
    nes = nes_attack(key)
    if nes:
        return f"NES {nes[0]}, momentum {nes[1]:g}"
    return key


def strength_text(method, strength):
    return f"{STRENGTH_SYMBOL.get(method, 's')}={strength:g}"


# --------------------------------------------------------------------------- reading one file

@dataclass(frozen=True)
class ResultFile:
    path: Path
    variant: Variant
    clean_acc: float
    n_test: int
    sparsity: dict  # layer -> fraction of exact zeros
    attacks: dict  # attack key -> {field: value} restricted to the schema's fields
    collapsed: bool
    failed_checks: tuple  # names of eval's sanity checks that did not pass


class _Checker:
    """Raises one-line UsageErrors that name the offending file and say how to fix it."""

    def __init__(self, path, folder_method):
        self.path = path
        self.folder_method = folder_method

    def fail(self, problem):
        raise UsageError(
            f"{self.path} is not a valid result file ({problem}); move it out of {self.path.parent} "
            f"or re-create it with python main.py --mode eval{' --dropout' if self.folder_method == 'dropout' else ''}")

    def require(self, condition, problem):
        if not condition:
            self.fail(problem)

    def number(self, value, where, low=None, high=None, nullable=False):
        if value is None and nullable:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        bounds = f" in [{low:g}, {high:g}]" if high is not None else (f" >= {low:g}" if low is not None else "")
        self.require(ok, f"{where} must be a number{bounds}, got {value!r}")
        return float(value)

    def count(self, value, where):
        self.require(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                     f"{where} must be a non-negative integer, got {value!r}")
        return value

    def mapping(self, value, where):
        self.require(isinstance(value, dict), f"{where} must be an object")
        return value


def _read_json(path, checker):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        checker.fail("not UTF-8 text")
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}; fix its permissions or move it out of {path.parent}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        checker.fail(f"malformed JSON: {err.msg} at line {err.lineno}")


def _read_variant(raw, check):
    raw = check.mapping(raw, "'variant'")
    method = raw.get("method")
    check.require(method in (BASELINE, check.folder_method),
                  f"variant method {method!r} does not belong in results/{check.folder_method}")
    layer = raw.get("layer")
    if method == BASELINE:
        check.require(layer is None, "the standard baseline must have layer null")
    else:
        check.require(layer in LAYER_NAMES, f"variant layer {layer!r} is not one of {' '.join(LAYER_NAMES)}")
    strength = check.number(raw.get("strength"), "variant strength", low=0)
    seed = check.count(raw.get("seed"), "variant seed")
    variant = Variant(method, layer, strength, seed)
    # Two files claiming one identity would be averaged twice as seeds.
    check.require(check.path.stem == variant.name,
                  f"it holds variant {variant.name} but is named {check.path.name}; "
                  f"the file for that variant must be {variant.name}.json")
    return variant


def _read_attack(key, raw, check):
    raw = check.mapping(raw, f"attacks.{key}")
    fields = {"n": check.count(raw.get("n"), f"attacks.{key}.n"),
              "n_correct": check.count(raw.get("n_correct"), f"attacks.{key}.n_correct")}
    check.require(fields["n_correct"] <= fields["n"], f"attacks.{key}.n_correct exceeds n")
    for field in RATE_FIELDS:
        check.require(field in raw, f"attacks.{key} lacks {field}")
        # A rate over zero samples is undefined (null): all of them when n == 0, the correct ones when n_correct == 0.
        empty = fields["n"] == 0 or (field == "success_rate_correct" and fields["n_correct"] == 0)
        fields[field] = check.number(raw[field], f"attacks.{key}.{field}", low=0, high=1, nullable=empty)
    if nes_attack(key):
        for field in QUERY_FIELDS:
            required = field in ("median_queries", "mean_queries")
            check.require(field in raw or not required, f"attacks.{key} lacks {field}")
            if field in raw:
                fields[field] = check.number(raw[field], f"attacks.{key}.{field}", low=0, nullable=True)
    return fields


def read_result_file(path, folder_method):
    """Validate one result file of ``results/{folder_method}/`` and return its numbers."""
    path = Path(path)
    check = _Checker(path, folder_method)
    data = _read_json(path, check)
    check.require(isinstance(data, dict) and "schema_version" in data, "no schema_version; not written by eval")
    check.require(data["schema_version"] == SCHEMA_VERSION,
                  f"schema_version {data['schema_version']!r}, this code reads {SCHEMA_VERSION}")
    check.require(data.get("method") == folder_method,
                  f"method {data.get('method')!r} but it sits in results/{folder_method}")
    variant = _read_variant(data.get("variant"), check)
    sparsity = check.mapping(data.get("activation_sparsity"), "'activation_sparsity'")
    unknown = sorted(set(sparsity) - set(LAYER_NAMES))
    check.require(not unknown, f"activation_sparsity has unknown layer {unknown[0]!r}" if unknown else "")
    sparsity = {layer: check.number(sparsity[layer], f"activation_sparsity.{layer}", low=0, high=1)
                for layer in LAYER_NAMES if layer in sparsity}
    attacks = check.mapping(data.get("attacks"), "'attacks'")
    metadata = (data.get("checkpoint") or {}).get("metadata") or {}
    return ResultFile(
        path=path,
        variant=variant,
        clean_acc=check.number(data.get("clean_acc"), "clean_acc", low=0, high=1),
        n_test=check.count(data.get("n_test"), "n_test"),
        sparsity=sparsity,
        attacks={key: _read_attack(key, attacks[key], check) for key in sorted(attacks, key=attack_order)},
        collapsed=bool(metadata.get("collapsed", False)) if isinstance(metadata, dict) else False,
        failed_checks=_failed_checks(data.get("checks", []), check),
    )


def _failed_checks(checks, check):
    check.require(isinstance(checks, list) and all(isinstance(c, dict) and "name" in c for c in checks),
                  "'checks' must be a list of {name, passed, detail}")
    return tuple(str(c["name"]) for c in checks if c.get("passed") is False)


def load_result_files(results_dir, method):
    """Every result file in ``results_dir/method`` (sorted by name); [] when the folder is absent.

    Hidden files are left alone: they are editor or atomic-write leftovers, not results.
    """
    folder = Path(results_dir) / method
    if not folder.is_dir():
        return []
    paths = sorted(p for p in folder.glob("*.json") if p.is_file() and not p.name.startswith("."))
    return [read_result_file(path, method) for path in paths]


def select_files(files, layers, include_baseline):
    def wanted(variant):
        return include_baseline if variant.is_baseline else variant.layer in layers

    return [f for f in files if wanted(f.variant)]


def missing_requests(files, layers, include_baseline):
    """Names of requested variants (the baseline, each layer) without a single result file."""
    have_layers = {f.variant.layer for f in files if not f.variant.is_baseline}
    missing = [BASELINE] if include_baseline and not any(f.variant.is_baseline for f in files) else []
    return missing + [layer for layer in LAYER_NAMES if layer in layers and layer not in have_layers]


# --------------------------------------------------------------------------- merging seeds

@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation over the seeds that have a value (std None below 2 seeds)."""
    mean: float | None
    std: float | None
    count: int

    @classmethod
    def of(cls, values):
        values = [v for v in values if v is not None]
        if not values:
            return cls(None, None, 0)
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))


MISSING = Stat(None, None, 0)


@dataclass(frozen=True)
class AttackSummary:
    n: tuple  # samples attacked, per seed (in the order of ``seeds``)
    n_correct: tuple  # of those, initially correct, per seed
    seeds: tuple
    fields: dict  # field -> Stat

    def get(self, field):
        return self.fields.get(field, MISSING)


@dataclass(frozen=True)
class VariantSummary:
    """One (method, layer, strength) with its seeds merged."""
    method: str
    layer: str | None
    strength: float
    seeds: tuple
    files: tuple
    clean_acc: Stat
    n_test: tuple
    sparsity: dict  # layer -> Stat
    attacks: dict  # attack key -> AttackSummary
    collapsed_seeds: tuple
    failed_checks: tuple  # "check (seed s)"

    @property
    def is_baseline(self):
        return self.method == BASELINE

    @property
    def label(self):
        return BASELINE if self.is_baseline else f"{self.layer} ({strength_text(self.method, self.strength)})"

    @property
    def own_sparsity(self):
        """Sparsity of the regularised layer (the baseline has none)."""
        return MISSING if self.is_baseline else self.sparsity.get(self.layer, MISSING)

    def attack(self, key, field):
        return self.attacks[key].get(field) if key in self.attacks else MISSING


def _summarise(group):
    first = group[0].variant
    attack_keys = sorted({key for f in group for key in f.attacks}, key=attack_order)
    attacks = {}
    for key in attack_keys:
        with_attack = [f for f in group if key in f.attacks]
        runs = [f.attacks[key] for f in with_attack]
        fields = sorted({field for run in runs for field in run if field not in ("n", "n_correct")})
        attacks[key] = AttackSummary(
            n=tuple(run["n"] for run in runs),
            n_correct=tuple(run["n_correct"] for run in runs),
            seeds=tuple(f.variant.seed for f in with_attack),
            fields={field: Stat.of(run.get(field) for run in runs) for field in fields},
        )
    return VariantSummary(
        method=first.method, layer=first.layer, strength=first.strength,
        seeds=tuple(f.variant.seed for f in group),
        files=tuple(f.path for f in group),
        clean_acc=Stat.of(f.clean_acc for f in group),
        n_test=tuple(f.n_test for f in group),
        sparsity={layer: Stat.of(f.sparsity.get(layer) for f in group)
                  for layer in LAYER_NAMES if any(layer in f.sparsity for f in group)},
        attacks=attacks,
        collapsed_seeds=tuple(f.variant.seed for f in group if f.collapsed),
        failed_checks=tuple(f"{name} (seed {f.variant.seed})" for f in group for name in f.failed_checks),
    )


def _variant_order(summary_or_file):
    v = summary_or_file
    return (not v.is_baseline, LAYER_NAMES.index(v.layer) if v.layer else -1, v.strength)


@dataclass(frozen=True)
class MethodResults:
    """All merged variants of one method's results folder, baseline first, then layer order, then strength."""
    method: str
    folder: Path
    variants: tuple

    @property
    def baseline(self):
        return next((v for v in self.variants if v.is_baseline), None)

    @property
    def layers(self):
        present = {v.layer for v in self.variants if not v.is_baseline}
        return tuple(layer for layer in LAYER_NAMES if layer in present)

    def at_layer(self, layer):
        return [v for v in self.variants if v.layer == layer and not v.is_baseline]

    @property
    def attacks(self):
        return tuple(sorted({key for v in self.variants for key in v.attacks}, key=attack_order))

    @property
    def seeds(self):
        return tuple(sorted({seed for v in self.variants for seed in v.seeds}))

    @property
    def file_count(self):
        return sum(len(v.files) for v in self.variants)

    def one_per_layer(self):
        """Per layer, the variant at the default strength, else at the evaluated strength closest to it.

        Closeness is on a log scale for L1 (strengths span decades) and linear for dropout.
        """
        default = DEFAULT_STRENGTH[self.method]

        def distance(v):
            if self.method == "l1":
                return abs(math.log10(max(v.strength, 1e-12)) - math.log10(default))
            return abs(v.strength - default)

        return [min(self.at_layer(layer), key=lambda v: (distance(v), v.strength)) for layer in self.layers]

    def swept_layers(self):
        return tuple(layer for layer in self.layers if len(self.at_layer(layer)) > 1)


def merge_seeds(method, folder, files):
    groups = {}
    for f in sorted(files, key=lambda f: (_variant_order(f.variant), f.variant.seed)):
        groups.setdefault((f.variant.method, f.variant.layer, f.variant.strength), []).append(f)
    return MethodResults(method=method, folder=Path(folder), variants=tuple(_summarise(g) for g in groups.values()))
