"""Model specs become a graph of train and evaluate tasks, run here, on Slurm or printed. The tasks of one seed form a
block, so a study compares models made on one kind of CPU (``one_kind_per_block`` redoes a block begun elsewhere)."""
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from common.machine import kind_of, machine
from planner.tasks import EVALUATE, TRAIN, Task, TaskFailed, finished_checkpoint, is_done, run_task
from training.checkpoint import load_checkpoint
from training.recipe import Recipe


@dataclass(frozen=True)
class Plan:
    tasks: tuple  # in run order: block by block (seed order), each block's trainings, then its evaluations
    done: tuple  # the tasks left out because their output exists and validates
    redone_blocks: tuple = ()  # seeds whose block was begun on another kind of CPU, redone here
    not_ready: tuple = ()  # (spec, why): evaluations left out because their model has no finished checkpoint

    def blocks(self):
        blocks = {}
        for task in self.tasks:
            blocks.setdefault(task.spec.seed, []).append(task)
        return blocks

    def describe(self):
        lines = [f"plan: {len(self.tasks)} tasks ({sum(t.kind == TRAIN for t in self.tasks)} trainings, "
                 f"{sum(t.kind == EVALUATE for t in self.tasks)} evaluations), {len(self.done)} done already"]
        for seed, tasks in self.blocks().items():
            redo = " (begun on another kind of CPU: redone here)" if seed in self.redone_blocks else ""
            lines.append(f"block seed {seed}{redo}:")
            lines += [f"  {task.key}" + (f"  <- {', '.join(task.needs)}" if task.needs else "") for task in tasks]
        return "\n".join(lines)


def audit_needs_reference(protocol):
    """Whether an evaluation reads its baseline's record (its audit radii are multiples of its median eps*)."""
    from evaluation.config import audit_radius
    return "linf" in (protocol.minimal_norms or ()) and any(audit_radius(r)[1] for r in protocol.audit_radii or ())


def make_plan(specs, setup, train=True, evaluate=True, one_kind_per_block=False, pending=()):
    """The ``Plan`` that trains and evaluates ``specs``; an evaluation waits for its model's training, its baseline's
    record where the audit scales with it, and its surrogate. ``pending``: keys of tasks queued elsewhere (Slurm)."""
    specs = list(dict.fromkeys(specs))
    redone = block_kinds(specs, setup) if one_kind_per_block else set()
    forced = replace(setup, force=True)
    tasks, done, not_ready = [], [], []

    def todo(task):
        return not is_done(task, forced if task.spec.seed in redone else setup)

    for seed in sorted({spec.seed for spec in specs}):
        block = [spec for spec in specs if spec.seed == seed]
        evaluations = []
        for spec in sorted(block, key=lambda spec: spec.baseline != spec) if evaluate else ():
            task = Task(EVALUATE, spec)
            if not todo(task):
                done.append(task)
            elif not train and Task(TRAIN, spec).key not in pending and finished_checkpoint(spec, setup) is None:
                not_ready.append((spec, why_not_ready(spec, setup)))
            else:
                evaluations.append(task)
        wanted = block if not evaluate else list(dict.fromkeys(
            [task.spec for task in evaluations] + [task.spec.surrogate for task in evaluations if task.spec.surrogate]))
        trainings = [Task(TRAIN, spec) for spec in wanted] if train else []
        tasks += [task for task in trainings if todo(task)]
        done += [task for task in trainings if task not in tasks]
        for task in evaluations:
            spec, needs = task.spec, [Task(TRAIN, task.spec).key]
            if audit_needs_reference(setup.protocol) and spec.baseline != spec:
                needs.append(Task(EVALUATE, spec.baseline).key)
            if spec.surrogate is not None:
                needs.append(Task(TRAIN, spec.surrogate).key)
            planned = {task.key for task in tasks} | set(pending)
            tasks.append(Task(EVALUATE, spec, tuple(key for key in needs if key in planned)))
    return Plan(tuple(tasks), tuple(done), tuple(sorted(redone)), tuple(not_ready))


def why_not_ready(spec, setup):
    """Why ``spec``'s model cannot be evaluated yet, with the command that trains it (with its checkpoint's recipe)."""
    path = spec.checkpoint_path(setup.models_root)
    if not path.is_file():
        command = setup.recipe(spec).train_command(spec, setup.data_dir, setup.models_root)
        return f"no checkpoint of {spec.name} in {path.parent}; train it with: {command}"
    metadata = load_checkpoint(path, mmap=True)["metadata"]
    diverged = metadata["status"] == "diverged"
    command = Recipe.from_stored(metadata["recipe"]).train_command(spec, setup.data_dir, setup.models_root,
                                                                   force=diverged, state_amp=True)
    return (f"skipping {spec.name}: its checkpoint {path} is {metadata['status'].replace('_', ' ')}; "
            f"{'retrain it' if diverged else 'finish its training'} with: {command}")


def block_kinds(specs, setup):
    """The seeds whose block is unfinished and holds an output made on another kind of CPU than this one."""
    here = kind_of(machine())
    redo = set()
    for seed in sorted({spec.seed for spec in specs}):
        block = [spec for spec in specs if spec.seed == seed]
        kinds, finished = set(), True
        for spec in block:
            path, record = spec.checkpoint_path(setup.models_root), setup.store.get(spec)
            if path.is_file():
                kinds.add(kind_of(load_checkpoint(path, mmap=True)["metadata"].get("machine")))
            if record is not None:
                kinds.add(kind_of(record.machine))
            finished &= record is not None
        if not finished and kinds - {here}:
            redo.add(seed)
    return redo


def waves(tasks):
    """A block's tasks in the waves they run in: its trainings, then its evaluations, each after those it needs."""
    trainings = [task for task in tasks if task.kind == TRAIN]
    evaluations, placed, result = [task for task in tasks if task.kind == EVALUATE], set(), []
    while evaluations:
        wave = [task for task in evaluations
                if all(need in placed or not need.startswith(EVALUATE) for need in task.needs)]
        wave = wave or evaluations  # a need outside the plan is not waited for
        result.append(wave)
        placed |= {task.key for task in wave}
        evaluations = [task for task in evaluations if task not in wave]
    return ([trainings] if trainings else []) + result


def run_local(plan, setup, workers=None, log_dir=None):
    """Run ``plan`` here, block after block (``workers``: see ``_run_tasks``); returns the failed tasks' keys."""
    started, failed = time.perf_counter(), []
    if plan.done:
        names = " ".join(dict.fromkeys(task.spec.name for task in plan.done))
        print(f"done already, kept: {names} (--force redoes them)", flush=True)
    with tqdm(total=len(plan.tasks), desc="tasks", unit="task", disable=workers is None) as bar:
        for tasks in plan.blocks().values():
            for wave in waves(tasks):
                runnable = [task for task in wave if not set(task.needs) & set(failed)]
                failed += [task.key for task in wave if task not in runnable]
                size = None if workers is None else 1 if wave[0].kind == TRAIN else workers
                failed += _run_tasks(runnable, setup, size, log_dir)
                bar.update(len(wave))
    minutes = (time.perf_counter() - started) / 60
    print(f"plan: {len(plan.tasks) - len(failed)} of {len(plan.tasks)} tasks done, {len(plan.done)} done already, "
          f"{len(failed)} failed{' (' + ', '.join(failed) + ')' if failed else ''} in {minutes:.1f} min", flush=True)
    return failed


def log_path(log_dir, task):
    return log_dir / f"{task.kind}-{task.spec.dataset}-{task.spec.model}-{task.spec.name}.log"


def _in_child(task, setup, path):
    with open(path, "a", buffering=1) as log, redirect_stdout(log), redirect_stderr(log):
        return run_task(task, setup)


def _run_tasks(tasks, setup, workers, log_dir):
    """Each task in turn in this process (``workers`` None), or each in a process of its own, ``workers`` at once."""
    failed = []
    if workers is None:
        for task in tasks:
            try:
                print(run_task(task, setup), flush=True)
            except TaskFailed as reason:
                print(reason, flush=True)
                failed.append(task.key)
        return failed
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        futures = {pool.submit(_in_child, task, setup, log_path(log_dir, task)): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                print(future.result(), flush=True)
            except TaskFailed as reason:
                print(f"{reason} (log {log_path(log_dir, task)})", flush=True)
                failed.append(task.key)
    return failed
