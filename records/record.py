"""Result records: one JSON file per evaluated model. The only writer and reader of result files: every record is
checked whole when read and before it is written, so a hand-edited or foreign file is named before it misleads."""
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import get_type_hints

from common.errors import FileProblem
from common.io import atomic_write_text
from data.registry import DATASETS
from models import MODELS, layer_names
from models.spec import ModelSpec
from records.parts import (SHA256, AttackResult, Audit, Check, CheckpointInfo, CurvePoint, EpsStarEntry, FieldReader,
                           WorstCase, part_json)
from sparsity.methods import BASELINE, METHODS
from training.adversarial import ADV_TRAININGS

FORMAT = "sparsity-robustness/result"
# 4: eps* as the minimum over all evidence, the audit; 5: the model's ModelSpec (data set, architecture, method,
# layer, strength, seed, training) in place of the results folder's method and the variant, one file per model in a
# store (records.store). Only the current version is read; ``python -m records.migrate`` moves version 4 once.
SCHEMA_VERSION = 5
MIGRATE_COMMAND = "python -m records.migrate"
# The eval_config keys that readers use (figure and table titles: the protocol's eps; the --quick label). The rest
# is recorded as run and compared whole (evaluation.runner.is_up_to_date), never read key by key.
EVAL_CONFIG_READ = ("eps", "quick")


@dataclass(frozen=True)
class Evaluation:
    """What evaluating one model gives: every part of its record but the identity (spec, checkpoint, machine)."""

    clean_acc: float  # over the whole test set
    learned: bool | None  # at least 5 points above chance (None in files from before it was recorded)
    n_test: int
    sparsity: dict[str, float]  # layer -> fraction of exact zeros of its output activation over the test set
    worst_case: WorstCase | None  # None without any attack or eps*
    attacks: dict[str, AttackResult]  # run key -> its run, in the order eval ran them
    curves: dict[str, tuple[CurvePoint, ...]]  # run key -> its curve (with --eps-sweep; {} without)
    minimal: dict[str, EpsStarEntry]  # norm -> eps*; {} if not measured
    audit: Audit | None  # the audit at eps* scale (None without an L-inf eps*)
    images_sha256: str | None  # identity of the evaluated images and labels (pairs per-image values of two records)
    checks: tuple[Check, ...]  # in run order
    timings: dict[str, float]  # seconds per part
    query_indices: tuple[int, ...]  # the evaluated images (test set indices) the query-based attacks got
    eval_config: dict  # every setting as run (EVAL_CONFIG_READ: the keys readers use)

    @property
    def failed_checks(self):
        return tuple(check.name for check in self.checks if check.status == "failed")


# the JSON keys of fields whose Python name differs
_KEYS = {"sparsity": "activation_sparsity", "curves": "robustness_curves", "minimal": "minimal_perturbation",
         "images_sha256": "eval_images_sha256"}


@dataclass(frozen=True)
class ResultRecord(Evaluation):
    """One result file: the model evaluated (its spec), where its checkpoint came from, and its ``Evaluation``."""

    path: Path  # the file
    spec: ModelSpec
    checkpoint: CheckpointInfo
    # what computed the evaluation (common.machine: CPU model, kernel set, threads; the checkpoint's metadata names
    # the training's); None only in records migrated from before 2026-12-05
    machine: dict | None = None

    @classmethod
    def of(cls, evaluation, path, spec, checkpoint, machine=None):
        return cls(**{f.name: getattr(evaluation, f.name) for f in fields(Evaluation)}, path=Path(path), spec=spec,
                   checkpoint=checkpoint, machine=machine)

    @property
    def dataset(self):
        return self.spec.dataset

    @property
    def collapsed(self):
        return self.checkpoint.collapsed

    @property
    def layer_names(self):
        return layer_names(self.spec.model)

    def to_json(self):
        """The file's content (strict JSON once dumped: a NaN or infinity is a bug)."""
        document = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "spec": self.spec.to_record(),
                    "checkpoint": self.checkpoint.to_json()}
        for f in fields(Evaluation):
            document[_KEYS.get(f.name, f.name)] = part_json(getattr(self, f.name))
        if self.machine is not None:
            document["machine"] = dict(self.machine)
        return document

    @classmethod
    def from_json(cls, data, path):
        """The record of a parsed result file ``path``; a FileProblem names the file and the first bad field."""
        r = FieldReader(path)
        r.require(isinstance(data, dict), f"not a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if isinstance(version, int) and not isinstance(version, bool) and version == 4:
            raise FileProblem(f"{r.path} is a result file of schema {version} and this code reads only schema "
                              f"{SCHEMA_VERSION}: move it into a store once with: {MIGRATE_COMMAND} "
                              f"{r.path.parent.parent.parent}", "results_dir")
        r.require(version == SCHEMA_VERSION, f"schema_version {version!r}, this code reads {SCHEMA_VERSION} (files of "
                                             f"versions 1-3: evaluate the model again)")
        r.require(data.get("format") == FORMAT, f"format {data.get('format')!r} is not {FORMAT}")
        checkpoint = CheckpointInfo.read(r, r.present(data, "checkpoint"), "checkpoint")
        spec = _spec(r, r.present(data, "spec"), checkpoint)
        read = {}
        for name, kind in get_type_hints(Evaluation).items():  # each by its annotation
            key = _KEYS.get(name, name)
            value = r.present(data, key)
            if name == "learned":
                read[name] = r.flag(value, key, nullable=True)
            elif name == "images_sha256":
                read[name] = r.text(value, key, nullable=True)
                r.require(value is None or SHA256.fullmatch(value), f"{key} must be 64 hex digits, got {value!r}")
            elif name == "checks":
                read[name] = Check.read_all(r, value)
            elif name == "eval_config":
                read[name] = _eval_config(r, value)
            else:
                read[name] = r.value(value, kind, key, (0, 1) if name in ("clean_acc", "sparsity") else (0, None))
        unknown = sorted(set(read["sparsity"]) - set(layer_names(spec.model)))
        r.require(not unknown, f"activation_sparsity has unknown layer {unknown[:1]}")
        machine = None if data.get("machine") is None else dict(r.mapping(data["machine"], "machine"))
        return cls(**read, path=r.path, spec=spec, checkpoint=checkpoint, machine=machine)


def _eval_config(r, raw):
    """The settings as run: an object whose EVAL_CONFIG_READ keys are what readers take them to be."""
    raw = r.mapping(raw, "eval_config")
    eps, quick = (r.present(raw, key, "eval_config") for key in EVAL_CONFIG_READ)
    r.number(eps, "eval_config.eps", low=0, high=1)
    r.flag(quick, "eval_config.quick")
    return dict(raw)


def _spec(r, raw, checkpoint):
    """The record's ModelSpec, checked against its checkpoint and its file's name (two files claiming one model
    would count twice as seeds)."""
    raw = r.mapping(raw, "spec")
    dataset, model, method, layer = (raw.get(key) for key in ("dataset", "model", "method", "layer"))
    r.require(dataset in DATASETS, f"spec.dataset {dataset!r} is not one of {', '.join(DATASETS)}")
    r.require(model in MODELS, f"spec.model {model!r} is not one of {', '.join(MODELS)}")
    r.require((checkpoint.recipe.get("dataset"), checkpoint.model) == (dataset, model),
              f"spec says {dataset} {model} but its checkpoint was trained as {checkpoint.recipe.get('dataset')} "
              f"{checkpoint.model}")
    r.require(method == BASELINE or method in METHODS, f"spec.method {method!r} is not {BASELINE} or one of "
                                                       f"{', '.join(METHODS)}")
    if method == BASELINE:
        r.require(layer is None, "the standard baseline must have layer null")
    else:
        r.require(layer in layer_names(model), f"spec.layer {layer!r} is not one of {' '.join(layer_names(model))}")
    adv, adv_eps = raw.get("adv"), raw.get("adv_eps")
    r.require(adv is None or (adv in ADV_TRAININGS and isinstance(adv_eps, float) and 0 < adv_eps <= 1),
              f"spec adversarial training {adv!r} at eps {adv_eps!r} is not one of {' '.join(ADV_TRAININGS)} at an "
              f"eps in (0, 1]")
    spec = ModelSpec(method, layer, r.number(raw.get("strength"), "spec.strength", low=0),
                     r.count(raw.get("seed"), "spec.seed"), adv, adv_eps if adv else None, dataset=dataset, model=model)
    r.require(r.path.stem == spec.name, f"it holds model {spec.name} but is named {r.path.name}")
    r.require(raw.get("name") == spec.name, f"spec.name {raw.get('name')!r} is not {spec.name}")
    return spec


def is_ours(data):
    """Whether a parsed JSON document claims to be one of this project's result files."""
    return isinstance(data, dict) and (data.get("format") == FORMAT
                                       or ("schema_version" in data and "checkpoint" in data))


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


def read_record(path):
    """The validated record in ``path``; FileProblem naming the file when it is unreadable or not a valid record."""
    reader = FieldReader(path)
    data = _load_json(path, reader)
    reader.require(is_ours(data), "not a result file of this project (no format tag)")
    return ResultRecord.from_json(data, path)


def write_record(record):
    """Write ``record`` atomically after checking it as a reader will (one that would not read back is a bug);
    returns the record as read back."""
    text = json.dumps(record.to_json(), indent=2, allow_nan=False)
    written = ResultRecord.from_json(json.loads(text), record.path)
    atomic_write_text(record.path, text + "\n", location="results_dir")
    return written


