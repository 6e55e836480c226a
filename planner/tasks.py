"""The two kinds of task a plan is made of (one model's training or evaluation), and what every task of one plan shares
(``Setup``). ``is_done``, the skip rule, is checked when the plan is made and again when the task starts."""
import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from common import stats
from common.device import cpu_threads, default_threads
from common.errors import FileProblem
from common.machine import machine
from evaluation.config import EvalConfig
from models.spec import ModelSpec
from records.parts import CheckpointInfo
from records.record import ResultRecord
from records.store import ResultStore
from training.checkpoint import checkpoint_spec, load_checkpoint, model_from_checkpoint, checkpoint_test_set
from training.loop import check_checkpoint, load_training_data, outcome_line, train_model
from training.recipe import Recipe

TRAIN, EVALUATE = "train", "evaluate"


@dataclass(frozen=True)
class Setup:
    """What every task of a plan shares: the recipe's options, the protocol, where files live, device and threads."""

    models_root: Path
    results_root: Path
    data_dir: Path
    recipe_options: dict = field(default_factory=dict)  # Recipe.from_options keywords (quick, epochs, amp, ...)
    protocol: EvalConfig | None = None  # None: the plan evaluates nothing
    device: str = "cpu"
    train_threads: int | None = None  # None: leave torch's count as it is
    eval_threads: int | None = None
    channels_last: bool | None = None  # training's memory layout (None: training.loop's default rule)
    compile: bool = False
    force: bool = False  # redo tasks whose output exists

    def recipe(self, spec):
        return Recipe.from_options(**{**self.recipe_options, "dataset": spec.dataset, "model": spec.model})

    def protocol_for(self, spec):
        """The protocol with the spec's seed for its attacks, targets and query subset."""
        return replace(self.protocol, seed=spec.seed)

    @property
    def store(self):
        return ResultStore(self.results_root)


@dataclass(frozen=True)
class Task:
    kind: str  # TRAIN or EVALUATE
    spec: ModelSpec
    needs: tuple = ()  # keys of the tasks it waits for (an evaluation: its model's training, the reference's record)

    @property
    def key(self):
        return f"{self.kind} {self.spec.dataset}/{self.spec.model}/{self.spec.name}"


def file_sha256(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def finished_checkpoint(spec, setup):
    """The checkpoint of ``spec`` where its training completed, else None; FileProblem where it holds another model."""
    path = spec.checkpoint_path(setup.models_root)
    if not path.is_file():
        return None
    checkpoint = load_checkpoint(path, mmap=True)
    stored = checkpoint_spec(checkpoint)
    if stored != spec:
        raise FileProblem(f"{path} holds {stored.name} of {stored.dataset} ({stored.model}), not {spec.name} of "
                          f"{spec.dataset} ({spec.model}); move it to its own place or retrain it", "models_dir")
    return checkpoint if checkpoint["metadata"]["status"] == "complete" else None


def is_done(task, setup):
    """The skip rule (``setup.force``: never): a complete or diverged checkpoint of this recipe; a record of this
    protocol, of this very checkpoint where it is here (a fresh machine holds the committed records alone)."""
    if setup.force:
        return False
    if task.kind == TRAIN:
        checkpoint = check_checkpoint(task.spec, setup.recipe(task.spec), setup.models_root)
        return checkpoint is not None and checkpoint["metadata"]["status"] in ("complete", "diverged")
    record = setup.store.get(task.spec)
    if record is None:
        return False
    path = task.spec.checkpoint_path(setup.models_root)
    protocol = setup.protocol_for(task.spec).resolved(torch.device(setup.device), record.n_test)
    return ((not path.is_file() or record.checkpoint.sha256 == file_sha256(path))
            and recorded_as(record.eval_config, {**protocol.to_dict(), "device": setup.device},
                            EvalConfig().to_dict()))


def recorded_as(stored, expected, default):
    """Whether a record's settings ``stored`` are ``expected``, a setting it predates counting as ``default``."""
    if not isinstance(expected, dict):
        return stored == expected
    default = default or {}
    return isinstance(stored, dict) and set(stored) <= set(expected) and all(
        recorded_as(stored[key], value, default.get(key)) if key in stored else value == default.get(key)
        for key, value in expected.items())


def run_task(task, setup):
    """Do ``task`` here, unless its output appeared meanwhile; returns the line that reports it."""
    threads = setup.train_threads if task.kind == TRAIN else setup.eval_threads
    with cpu_threads(threads or default_threads()):
        if is_done(task, setup):
            return f"{task.spec.name}: {'trained' if task.kind == TRAIN else 'evaluated'} already, skipped"
        return train(task.spec, setup) if task.kind == TRAIN else evaluate(task.spec, setup)


def train(spec, setup):
    recipe = setup.recipe(spec)
    outcome = train_model(spec, recipe, load_training_data(setup.data_dir, recipe), torch.device(setup.device),
                          setup.models_root, force=setup.force, channels_last=setup.channels_last,
                          compile=setup.compile)
    line = outcome_line(outcome)
    if outcome.metadata["status"] == "diverged":
        raise TaskFailed(line)
    return line


class TaskFailed(Exception):
    """A task that ran to its end but failed (a diverged training): its line says why."""


def reference_median(spec, store):
    """``(source, median eps*)`` of ``spec.baseline``'s record, the scale of the audit radii (None: none)."""
    if spec.baseline == spec:
        return None
    record = store.get(spec.baseline)
    entry = record.minimal.get("linf") if record is not None else None
    if not entry:
        return None
    median = stats.median([v if v is not None else math.inf for v in entry.eps_star if v != 0])
    return f"{spec.baseline.name} median eps* (correct images)", median


def surrogate_model(spec, setup, device):
    """The transfer attack's source (``spec.surrogate``) where its finished checkpoint exists; else None."""
    if spec.surrogate is None:
        return None
    checkpoint = finished_checkpoint(spec.surrogate, setup)
    return None if checkpoint is None else model_from_checkpoint(checkpoint, device)


def evaluate(spec, setup):
    from evaluation.model import Baseline, ModelEvaluation  # the attacks' imports: only evaluating tasks need them

    path = spec.checkpoint_path(setup.models_root)
    checkpoint = finished_checkpoint(spec, setup)
    if checkpoint is None:
        raise FileProblem(f"no finished checkpoint of {spec.name} at {path}; train it first", "models_dir")
    device = torch.device(setup.device)
    metadata = checkpoint["metadata"]
    x, y = checkpoint_test_set(metadata, setup.data_dir)
    model = model_from_checkpoint(checkpoint, device)
    baseline = Baseline(reference_median(spec, setup.store), surrogate_model(spec, setup, device))
    evaluation = ModelEvaluation(model, spec, (x, y), setup.protocol_for(spec), baseline).run()
    evaluation = replace(evaluation, eval_config={**evaluation.eval_config, "device": setup.device})
    record = ResultRecord.of(evaluation, setup.store.path(spec), spec,
                             CheckpointInfo(str(path), file_sha256(path), metadata), machine())
    setup.store.put(record)
    return evaluation_line(spec, evaluation)


def evaluation_line(spec, evaluation):
    failed = evaluation.failed_checks
    return (f"{spec.name}: clean acc {evaluation.clean_acc:.1%}"
            + ("" if evaluation.learned else " (DID NOT LEARN: near chance)")
            + (f", worst case over every attack {evaluation.worst_case.robust_acc:.1%}"
               if evaluation.worst_case else "")
            + "".join(f", {key} robust acc {entry.robust_acc:.1%}" for key, entry in evaluation.attacks.items())
            + "".join(f", median eps* {norm} " + (f"{entry.median:.4g}" if entry.median is not None
                                                   else f">= {entry.limit:.4g} (censored)")
                      for norm, entry in evaluation.minimal.items())
            + (f"; FAILED checks: {' '.join(failed)}" if failed else ""))
