"""Result records: one JSON file per evaluated variant (its summary rows: ``evaluation.summary``).

This module is the only writer and the only reader of result files: ``--mode eval`` writes and re-reads them,
``--mode vis`` reads them. A record is a ``ResultRecord`` of frozen parts (``evaluation.record_parts``: ``EpsStarEntry``,
``Audit``, ...); ``ResultRecord.to_json`` is a file's content and ``ResultRecord.from_json`` the one way back,
checking the whole record (identity, numbers, ranges, per-image values against their counts), so a hand-edited or
foreign file is named, with the field, before it can mislabel a figure. A record is checked the same way before it
is written. A JSON file this project did not write (no ``format`` tag of ours) is skipped with a warning naming it;
a file of an older schema is refused with the command that migrates it (``evaluation.migrate``).
"""
import json
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

from common.errors import FileProblem
from common.io import atomic_write_text
from data.registry import DATASETS
from evaluation.record_parts import (SHA256, AttackResult, Audit, Check, CheckpointInfo, CurvePoint, EpsStarEntry,
                                     FieldReader, WorstCase, part_json)
from evaluation.summary import summary_csv
from models import layer_names
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
# The eval_config keys that readers use (figure and table titles: the protocol's eps; the --quick label). The rest
# is recorded as run and compared whole (evaluation.runner.is_up_to_date), never read key by key.
EVAL_CONFIG_READ = ("eps", "quick")


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
    # what computed the evaluation (common.machine: CPU model, kernel set, threads; the checkpoint's
    # metadata names the training's); None in files from before 2026-12-05
    machine: dict | None = None

    @classmethod
    def of(cls, evaluation, path, dataset, method, variant, checkpoint, machine=None):
        return cls(**{f.name: getattr(evaluation, f.name) for f in fields(Evaluation)}, path=Path(path),
                   dataset=dataset, method=method, variant=variant, checkpoint=checkpoint, machine=machine)

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
            document[_KEYS.get(name, name)] = part_json(getattr(self, name))
        if self.machine is not None:
            document["machine"] = dict(self.machine)
        return document

    @classmethod
    def from_json(cls, data, path, folder_method):
        """The record of a parsed result file ``path`` in the ``folder_method`` results folder, every field
        checked: a FileProblem names the file and the first bad field; one of an older schema names the command
        that migrates it."""
        r = FieldReader(path, folder_method)
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
            eval_config=_eval_config(r, r.present(data, "eval_config")),
            machine=None if data.get("machine") is None else dict(r.mapping(data["machine"], "machine")))


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
    reader = FieldReader(path, folder_method)
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
            reader = FieldReader(path, self.folder_method)
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
        FieldReader(path, self.folder_method).require(record is not None, "not a result file of this project (no "
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
