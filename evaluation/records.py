"""Result records: one JSON file per evaluated variant, and the summary rows built from them.

This module is the only writer and the only reader of result files: ``--mode
eval`` writes and re-reads them, ``--mode vis`` reads them. Every read checks
the whole record (identity, numbers, ranges), so a hand-edited or foreign file
is named before it can mislabel a figure. A JSON file this project did not
write (no ``format`` tag of ours) is skipped with a warning naming it.
"""
import csv
import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from common.errors import FileProblem
from common.io import atomic_write_text
from data.registry import DATASETS, LEGACY_DATASET
from models import layer_names, model_class
from evaluation.minimal import (ATTACK_PREFIX, BISECTION_METHOD, CENSORED, CLEAN, FAB_METHOD, LEGACY_PGD_METHOD,
                                NORMS)
from sparsity.methods import BASELINE
from sparsity.variants import Variant
from training.adversarial import ADV_TRAININGS

FORMAT = "sparsity-robustness/result"
# 2: format tag, check status, query_indices, eval_config without nes_eps/nes_alpha; 3: dataset; 4: eps* as the
# minimum over all evidence (methods "bisection" and "attack:<run key>", attack_eps, eps_star_before_audit), audit
SCHEMA_VERSION = 4
READABLE_VERSIONS = (2, 3, SCHEMA_VERSION)  # version 2 files are CIFAR-10's (the only data set then)
SUMMARY_NAME = "summary.csv"
RATE_FIELDS = ("success_rate_all", "success_rate_correct", "robust_acc")
COUNT_FIELDS = ("n", "n_correct", "n_success", "n_success_correct")
QUERY_FIELDS = ("median_queries", "mean_queries", "median_queries_all", "mean_queries_all",
                "median_queries_correct", "mean_queries_correct", "max_queries")
CHECK_STATUSES = ("passed", "failed", "not_run")
IDENTITY_COLUMNS = ("dataset", "variant", "method", "layer", "strength", "seed", "learned", "clean_acc", "n_test",
                    "worst_case_robust_acc", "worst_case_n", "worst_case_all_attacks_robust_acc",
                    "worst_case_all_attacks_n", "worst_case_attacks")
ATTACK_COLUMNS = ("n", "n_correct", "success_rate_all", "success_rate_correct", "robust_acc")
QUERY_COLUMNS = ("median_queries", "mean_queries", "median_queries_all", "mean_queries_all")
MINIMAL_METHODS = (CLEAN, FAB_METHOD, BISECTION_METHOD, CENSORED)
LEGACY_MINIMAL_METHODS = (CLEAN, FAB_METHOD, LEGACY_PGD_METHOD, CENSORED)  # schema <= 3
# float slack on "within the search limit": sizes are measured in float64 on float32 images
LIMIT_SLACK = 1e-5


def write_record(path, record):
    """Write one variant's record atomically, tagged with this project's format and schema version; returns the
    document as a reader of the file gets it. Strict JSON: a NaN or infinity is a bug (ValueError)."""
    text = json.dumps({"format": FORMAT, "schema_version": SCHEMA_VERSION, **record}, indent=2, allow_nan=False)
    atomic_write_text(path, text + "\n", location="results_dir")
    return json.loads(text)


@dataclass(frozen=True)
class ResultRecord:
    """A validated result file."""

    path: Path
    folder_method: str  # the results folder it sits in
    dataset: str  # registry name of the data set it was evaluated on
    variant: Variant
    model: str
    clean_acc: float
    learned: bool | None
    n_test: int
    sparsity: dict  # layer -> fraction of exact zeros
    attacks: dict  # run key -> its entry (validated numbers), in the order eval ran them
    checks: tuple  # {name, status, detail}
    collapsed: bool
    checkpoint: dict  # {path, sha256, metadata}
    eval_config: dict
    raw: dict
    worst_case: dict | None  # per-image worst case over every attack run (None in records written before it)
    minimal: dict  # norm -> minimal-perturbation entry (eps* per image, null = censored); {} if not measured
    images_sha256: str | None  # identity of the evaluated images (None in records written before it)
    audit: dict | None = None  # the audit at eps* scale (schema 4; None before it or where none ran)

    @property
    def failed_checks(self):
        return tuple(check["name"] for check in self.checks if check["status"] == "failed")

    @property
    def layer_names(self):
        return layer_names(self.model)


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
        self.require(ok, f"{where} must be a number{bounds}, got {value!r}")
        return float(value)

    def count(self, value, where):
        self.require(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                     f"{where} must be a non-negative integer, got {value!r}")
        return value

    def mapping(self, value, where):
        self.require(isinstance(value, dict), f"{where} must be an object, got {type(value).__name__}")
        return value

    def variant(self, raw, model):
        raw = self.mapping(raw, "variant")
        method = raw.get("method")
        self.require(method in (BASELINE, self.folder_method),
                     f"variant method {method!r} does not belong in a {self.folder_method} results folder")
        layer = raw.get("layer")
        if method == BASELINE:
            self.require(layer is None, "the standard baseline must have layer null")
        else:
            known = layer_names(model)
            self.require(layer in known, f"variant layer {layer!r} is not one of {' '.join(known)}")
        adv, adv_eps = raw.get("adv"), raw.get("adv_eps")
        self.require(adv is None or (adv in ADV_TRAININGS and isinstance(adv_eps, float) and 0 < adv_eps <= 1),
                     f"variant adversarial training {adv!r} at eps {adv_eps!r} is not one of "
                     f"{' '.join(ADV_TRAININGS)} at an eps in (0, 1]")
        variant = Variant(method, layer, self.number(raw.get("strength"), "variant.strength", low=0),
                          self.count(raw.get("seed"), "variant.seed"), adv, adv_eps if adv else None)
        # The file name is the identity: two files claiming one variant would be averaged twice as seeds.
        self.require(self.path.stem == variant.name,
                     f"it holds variant {variant.name} but is named {self.path.name}")
        self.require(raw.get("name") == variant.name, f"variant.name {raw.get('name')!r} is not {variant.name}")
        return variant

    def attack(self, key, raw):
        raw = self.mapping(raw, f"attacks.{key}")
        entry = dict(raw)
        for field in COUNT_FIELDS[:2]:
            entry[field] = self.count(raw.get(field), f"attacks.{key}.{field}")
        self.require(entry["n_correct"] <= entry["n"], f"attacks.{key}.n_correct exceeds n")
        self.require(isinstance(raw.get("targeted"), bool), f"attacks.{key}.targeted must be true or false")
        for field in RATE_FIELDS:
            self.require(field in raw, f"attacks.{key} lacks {field}")
            # a rate over no images is undefined (null): all of them when n == 0, the correct ones when n_correct == 0
            empty = entry["n"] == 0 or (field == "success_rate_correct" and entry["n_correct"] == 0)
            entry[field] = self.number(raw[field], f"attacks.{key}.{field}", low=0, high=1, nullable=empty)
        for field in QUERY_FIELDS:
            if field in raw:
                entry[field] = self.number(raw[field], f"attacks.{key}.{field}", low=0, nullable=True)
        return entry

    def minimal(self, raw):
        """The minimal-perturbation entries: per norm, per-image eps* within [0, limit] or null (censored), the
        method of each, and medians and intervals that agree with them."""
        raw = self.mapping(raw or {}, "minimal_perturbation")
        entries = {}
        for norm, entry in raw.items():
            where = f"minimal_perturbation.{norm}"
            entry = self.mapping(entry, where)
            self.require(norm in NORMS and entry.get("norm") == norm, f"{where} is not one of {', '.join(NORMS)}")
            limit = self.number(entry.get("limit"), f"{where}.limit", low=0)
            n = self.count(entry.get("n"), f"{where}.n")
            within = limit * (1 + LIMIT_SLACK)
            for field in ("eps_star", "fab_eps", "pgd_eps"):
                values = entry.get(field)
                self.require(isinstance(values, list) and len(values) == n, f"{where}.{field} must list {n} values")
                for value in values:
                    self.number(value, f"{where}.{field}[]", low=0, high=within, nullable=True)
            methods = entry.get("method")
            legacy = self.version < 4
            known = LEGACY_MINIMAL_METHODS if legacy else MINIMAL_METHODS
            runs = {} if legacy else self.mapping(entry.get("attack_eps"), f"{where}.attack_eps")
            allowed = set(known) | {ATTACK_PREFIX + key for key in runs}
            self.require(isinstance(methods, list) and len(methods) == n and set(methods) <= allowed,
                         f"{where}.method must list {n} of {', '.join(known)} or {ATTACK_PREFIX}<a run of attack_eps>")
            eps_star = [math.inf if v is None else v for v in entry["eps_star"]]
            for key, run in runs.items():
                run = self.mapping(run, f"{where}.attack_eps.{key}")
                self.number(run.get("eps"), f"{where}.attack_eps.{key}.eps", low=0, high=1)
                sizes = run.get("size")
                self.require(isinstance(sizes, list) and len(sizes) == n, f"{where}.attack_eps.{key}.size must list "
                                                                          f"{n} values")
                for index, size in enumerate(sizes):
                    size = self.number(size, f"{where}.attack_eps.{key}.size[]", low=0, high=within, nullable=True)
                    # the invariant: no attack the evaluation ran undercuts eps*
                    if size is not None and eps_star[index] > size * (1 + LIMIT_SLACK):
                        self.fail(f"{where}.eps_star[{index}] = {eps_star[index]:g} exceeds the size {size:g} of "
                                  f"the example by which {key} fooled that image")
            self.require(entry.get("n_censored") == methods.count(CENSORED) == entry["eps_star"].count(None),
                         f"{where}.n_censored disagrees with its per-image values")
            self.require(entry.get("n_clean_misclassified") == methods.count(CLEAN),
                         f"{where}.n_clean_misclassified disagrees with its per-image methods")
            for part in ("", "fab.", "pgd."):
                median = entry.get(part[:-1]) if part else entry
                median = self.mapping(median, f"{where}.{part[:-1] or 'median'}")
                self.number(median.get("median"), f"{where}.{part}median", low=0, high=within, nullable=True)
                self.require(median.get("median_censored") is (median.get("median") is None),
                             f"{where}.{part}median_censored must say whether the median is null")
            interval = self.mapping(entry.get("interval"), f"{where}.interval")
            for side in ("low", "high"):
                self.number(interval.get(side), f"{where}.interval.{side}", low=0, high=within, nullable=True)
            curve = entry.get("curve")
            self.require(isinstance(curve, list) and all(isinstance(point, dict) for point in curve),
                         f"{where}.curve must be a list of {{eps, robust_acc}}")
            for point in curve:
                self.number(point.get("eps"), f"{where}.curve[].eps", low=0, high=within)
                self.number(point.get("robust_acc"), f"{where}.curve[].robust_acc", low=0, high=1)
            entries[norm] = entry
        return entries

    def worst_case(self, raw):
        """``{n, n_robust, robust_acc, attacks, all_attacks_n, all_attacks_robust_acc}`` or None."""
        if raw is None:
            return None
        raw = self.mapping(raw, "worst_case")
        n = self.count(raw.get("n"), "worst_case.n")
        self.require(self.count(raw.get("n_robust"), "worst_case.n_robust") <= n, "worst_case.n_robust exceeds n")
        self.number(raw.get("robust_acc"), "worst_case.robust_acc", low=0, high=1)
        self.require(isinstance(raw.get("attacks"), list) and all(isinstance(a, str) for a in raw["attacks"]),
                     "worst_case.attacks must list attack keys")
        self.require(self.count(raw.get("all_attacks_n"), "worst_case.all_attacks_n") <= n,
                     "worst_case.all_attacks_n exceeds n")
        self.number(raw.get("all_attacks_robust_acc"), "worst_case.all_attacks_robust_acc", low=0, high=1,
                    nullable=raw["all_attacks_n"] == 0)
        return raw

    def checks(self, raw):
        ok = isinstance(raw, list) and all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                           and c.get("status") in CHECK_STATUSES for c in raw)
        self.require(ok, "checks must be a list of {name, status: passed|failed|not_run, detail}")
        return tuple(raw)

    def dataset(self, data):
        if data["schema_version"] == 2:
            return LEGACY_DATASET
        name = data.get("dataset")
        self.require(name in DATASETS, f"dataset {name!r} is not one of {', '.join(DATASETS)}")
        stored = ((data.get("checkpoint") or {}).get("metadata") or {}).get("recipe", {}).get("dataset")
        self.require(stored in (None, name), f"dataset {name!r} but its checkpoint was trained on {stored!r}")
        return name

    def audit(self, raw):
        """The audit at eps* scale: per radius, AutoAttack's per-image outcome and both robust accuracies."""
        if raw is None:
            return None
        raw = self.mapping(raw, "audit")
        self.require(isinstance(raw.get("radii"), list) and isinstance(raw.get("adaptive"), list),
                     "audit must hold lists radii and adaptive")
        for entry in raw["radii"]:
            entry = self.mapping(entry, "audit.radii[]")
            self.number(entry.get("eps"), "audit.radii[].eps", low=0, high=1)
            for field in ("autoattack_robust_acc", "eps_star_robust_acc"):
                self.number(entry.get(field), f"audit.radii[].{field}", low=0, high=1)
            outcome = entry.get("autoattack_still_correct")
            self.require(isinstance(outcome, list) and all(isinstance(v, bool) for v in outcome)
                         and len(outcome) == entry.get("n"),
                         "audit.radii[].autoattack_still_correct must list true/false per audited image (n of them)")
        for entry in raw["adaptive"]:
            entry = self.mapping(entry, "audit.adaptive[]")
            self.number(entry.get("robust_acc"), "audit.adaptive[].robust_acc", low=0, high=1)
        return raw

    def record(self, data):
        self.version = data.get("schema_version")
        self.require(data.get("schema_version") in READABLE_VERSIONS,
                     f"schema_version {data.get('schema_version')!r}, this code reads "
                     f"{', '.join(map(str, READABLE_VERSIONS))}")
        self.require(data.get("method") == self.folder_method,
                     f"method {data.get('method')!r} but it sits in a {self.folder_method} results folder")
        checkpoint = self.mapping(data.get("checkpoint"), "checkpoint")
        metadata = self.mapping(checkpoint.get("metadata"), "checkpoint.metadata")
        model = (metadata.get("recipe") or {}).get("model")
        self.require(isinstance(model, str) and _known_model(model), f"unknown model {model!r}")
        variant = self.variant(data.get("variant"), model)
        sparsity = self.mapping(data.get("activation_sparsity"), "activation_sparsity")
        unknown = sorted(set(sparsity) - set(layer_names(model)))
        self.require(not unknown, f"activation_sparsity has unknown layer {unknown[:1]}")
        learned = data.get("learned")
        self.require(learned is None or isinstance(learned, bool), "learned must be true, false or null")
        attacks = self.mapping(data.get("attacks"), "attacks")
        return ResultRecord(
            path=self.path, folder_method=self.folder_method, dataset=self.dataset(data), variant=variant, model=model,
            clean_acc=self.number(data.get("clean_acc"), "clean_acc", low=0, high=1),
            learned=learned,
            n_test=self.count(data.get("n_test"), "n_test"),
            sparsity={layer: self.number(value, f"activation_sparsity.{layer}", low=0, high=1)
                      for layer, value in sparsity.items()},
            attacks={key: self.attack(key, value) for key, value in attacks.items()},
            checks=self.checks(data.get("checks")),
            collapsed=metadata.get("collapsed") is True,
            checkpoint=checkpoint,
            eval_config=self.mapping(data.get("eval_config"), "eval_config"),
            raw=data,
            worst_case=self.worst_case(data.get("worst_case")),
            minimal=self.minimal(data.get("minimal_perturbation")),
            audit=self.audit(data.get("audit")),
            images_sha256=data.get("eval_images_sha256"),
        )


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
    return reader.record(data)


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
            known = self._files[path] = (stamp, reader.record(data) if is_ours(data) else None)
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

    def write(self, path, record):
        """``write_record``, keeping the record as written in memory."""
        path = Path(path)
        document = write_record(path, record)
        self._files[path] = (self._stamp(path), _Reader(path, self.folder_method).record(document))

    def write_summary(self):
        """Rewrite ``summary.csv`` from every record of the folder; returns its path and the records."""
        records = self.records()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=summary_columns(records), extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({key: "" if value is None else value for key, value in summary_row(record).items()})
        path = self.method_dir / SUMMARY_NAME
        atomic_write_text(path, buffer.getvalue(), location="results_dir")
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


def attack_keys(records):
    """Every attack key in the records, in the order eval ran them (first appearance)."""
    return list(dict.fromkeys(key for record in records for key in record.attacks))


def summary_columns(records):
    """Identity, sparsity per layer, then per attack its rates (and query statistics), then checks."""
    layers = dict.fromkeys(layer for record in records for layer in record.layer_names)
    columns = list(IDENTITY_COLUMNS) + [f"sparsity_{layer}" for layer in layers]
    for key in attack_keys(records):
        columns += [f"{key}_{metric}" for metric in ATTACK_COLUMNS]
        if any("median_queries" in record.attacks.get(key, {}) for record in records):
            columns += [f"{key}_{metric}" for metric in QUERY_COLUMNS]
    for norm in NORMS:
        if any(norm in record.minimal for record in records):
            columns += [f"eps_star_{norm}_{metric}" for metric in MINIMAL_COLUMNS]
    return columns + ["checks_failed", "checks_not_run"]


# per norm: the median eps* (empty when censored), its interval (empty high: past the limit), the counts
MINIMAL_COLUMNS = ("median", "low", "high", "limit", "n", "n_censored", "n_clean_misclassified", "fab_median",
                   "pgd_median")


def minimal_row(norm, entry):
    values = {"median": entry["median"], "low": entry["interval"]["low"], "high": entry["interval"]["high"],
              "limit": entry["limit"], "n": entry["n"], "n_censored": entry["n_censored"],
              "n_clean_misclassified": entry["n_clean_misclassified"], "fab_median": entry["fab"]["median"],
              "pgd_median": entry["pgd"]["median"]}
    return {f"eps_star_{norm}_{metric}": values[metric] for metric in MINIMAL_COLUMNS}


def worst_case_columns(worst):
    worst = worst or {}
    return {"worst_case_robust_acc": worst.get("robust_acc"), "worst_case_n": worst.get("n"),
            "worst_case_all_attacks_robust_acc": worst.get("all_attacks_robust_acc"),
            "worst_case_all_attacks_n": worst.get("all_attacks_n"),
            "worst_case_attacks": " ".join(worst.get("attacks", ())) or None}


def summary_row(record):
    variant = record.variant
    row = {"dataset": record.dataset, "variant": variant.name, "method": variant.method, "layer": variant.layer,
           "strength": variant.strength, "seed": variant.seed, "learned": record.learned,
           "clean_acc": record.clean_acc, "n_test": record.n_test, **worst_case_columns(record.worst_case)}
    row.update({f"sparsity_{layer}": fraction for layer, fraction in record.sparsity.items()})
    for key, entry in record.attacks.items():
        row.update({f"{key}_{metric}": value for metric, value in entry.items()})
    for norm, entry in record.minimal.items():
        row.update(minimal_row(norm, entry))
    row["checks_failed"] = " ".join(record.failed_checks)
    row["checks_not_run"] = " ".join(check["name"] for check in record.checks if check["status"] == "not_run")
    return row


def write_summary_csv(method_dir, folder_method, warn=None, dataset=None):
    """Rewrite ``method_dir/summary.csv`` from every result record there; returns its path and the records."""
    return RecordFolder(method_dir, folder_method, warn, dataset).write_summary()


def _cell(value, digits=3):
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_summary_table(records):
    """Plain-text table for the end of a run: clean accuracy, the per-image worst case, robust accuracy under each
    attack, the checks (every other number is in summary.csv and summary.md)."""
    keys = attack_keys(records)
    header = ["variant", "clean", "worst case"] + keys + ["checks"]
    rows = []
    for record in records:
        row = [record.variant.name + ("" if record.learned is not False else " (did not learn)"),
               _cell(record.clean_acc), _cell((record.worst_case or {}).get("robust_acc"))]
        row += [_cell(record.attacks.get(key, {}).get("robust_acc")) for key in keys]
        row.append("FAILED: " + ",".join(record.failed_checks) if record.failed_checks else "ok")
        rows.append(row)
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return ("robust accuracy over all n: worst case per image over every attack, then under each attack:\n"
            + "\n".join(lines))
