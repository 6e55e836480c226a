"""A command's variants as one Slurm job array: which variants need a task (the local launcher's skip rules,
less those already queued), submitting them, and waiting for and reporting each one.

Everything a task would refuse is checked here first (existing checkpoints and
result files, the data), so a bad command exits before anything is queued.
"""
import time
from pathlib import Path

from tqdm import tqdm

from common.cli import Interrupted
from common.errors import SchedulerError
from common.io import ensure_writable_dir
from evaluation.records import load_records, write_summary_csv
from evaluation.runner import (audit_scales_with_baseline, find_checkpoints, needs_evaluation, no_checkpoint_error,
                               print_warning)
from launch import slurm
from launch.array import DONE, FAILED, FOLDER, PENDING, RUNNING, ArrayJob, Task, queued_arrays
from training.checkpoint import checkpoint_test_set
from training.loop import load_training_data, variants_to_train

TRAIN, EVAL = "train", "eval"
POLL_S = 30  # squeue is asked every second at first, then less often, at last every POLL_S seconds
SQUEUE_TRIES = 3  # a busy controller may miss an answer: give up waiting after this many failures in a row


def submit_training(variants, recipe, data_dir, models_dir, config, command, workdir, force=False, log=print):
    """Train ``variants`` with ``recipe`` as one array, one task per variant still to train (``command(variant)``:
    its argv). Returns the exit status: 0, or 1 when waiting and a task failed."""
    slurm.require_sbatch()
    folder = Path(models_dir) / FOLDER
    queued = queued_arrays(folder, TRAIN, slurm.queued_tasks())
    unfinished = variants_to_train(variants, recipe, models_dir, force)
    todo = [variant for variant in unfinished if variant not in queued]
    if todo:
        load_training_data(data_dir, recipe)  # the tasks' data must be there before any of them starts
    finished = sum(variant not in unfinished and variant not in queued for variant in variants)
    return run_array(TRAIN, todo, [queued[v] for v in variants if v in queued], folder, "models_dir", command,
                     config, workdir, f"{finished} trained already", log=log)


def submit_evaluation(variants, method, models_dir, results_dir, data_dir, device, eval_config, config, command,
                      workdir, force=False, log=print, warn=print_warning, *, dataset):
    """Evaluate ``variants`` of ``dataset`` (its folders: ``models_dir``, ``results_dir``) as one array, one task per
    variant whose result is missing or stale, including those whose training task is still queued or running:
    the array then waits for those tasks."""
    slurm.require_sbatch()
    method_dir = Path(results_dir) / method
    load_records(method_dir, method, warn, dataset)  # a malformed result file stops the command before any queueing
    in_queue = slurm.queued_tasks()
    training = queued_arrays(Path(models_dir) / FOLDER, TRAIN, in_queue)
    queued = queued_arrays(method_dir / FOLDER, EVAL, in_queue)
    ready, warnings = find_checkpoints([v for v in variants if v not in training], models_dir, data_dir, dataset,
                                       eval_config.quick)
    if not ready and not any(variant in training for variant in variants):
        raise no_checkpoint_error(variants, warnings, models_dir)
    for warning in warnings:
        warn(warning)
    stale = [job for job in ready if needs_evaluation(job, method, results_dir, eval_config, device, force)]
    for metadata in {tuple(job.metadata["recipe"]["classes"]): job.metadata for job in stale}.values():
        checkpoint_test_set(metadata, data_dir)  # the tasks' data must be there before any of them starts
    todo = [v for v in variants if (v in training or v in {job.variant for job in stale}) and v not in queued]
    after = waits_for([training[variant] for variant in todo if variant in training], training.values())
    first = None
    if audit_scales_with_baseline(eval_config):
        # The audit's radii are multiples of the same-seed baseline's median eps*, read from its record when a
        # variant is evaluated: the baselines' tasks go first, as their own array, and the other variants' tasks
        # wait for them (and for baseline tasks already queued), as the local launcher's order has it.
        baselines = [v for v in todo if v.is_baseline and v.adv is None]
        if baselines and len(baselines) < len(todo):
            base_after = waits_for([training[v] for v in baselines if v in training], training.values())
            first = submit_array(EVAL, baselines, method_dir / FOLDER, "results_dir", command, config, workdir,
                                 base_after)
            log(submission_line(EVAL, first, [], "the other variants wait for it (the audit reads its records)",
                                base_after))
            todo = [v for v in todo if v not in baselines]
        seeds = {v.seed for v in todo}
        waiting = [queued[v] for v in queued if v.is_baseline and v.adv is None and v.seed in seeds]
        after = list(dict.fromkeys([*after, *([first.job_id] if first else []),
                                    *waits_for(waiting, list(queued.values()))]))
    status = run_array(EVAL, todo, [queued[v] for v in variants if v in queued], method_dir / FOLDER, "results_dir",
                       command, config, workdir, f"{len(ready) - len(stale)} up to date", after=after, log=log,
                       before=first)
    if config.wait:
        # tasks that end together each rebuild summary.csv and may miss each other's record: rebuild it once more
        path, _ = write_summary_csv(method_dir, method, lambda message: None, dataset)
        log(f"{path} lists every result in {method_dir}")
    return status


def waits_for(needed, queued):
    """What an array waits for to wait for the ``needed`` ``(array, task)`` pairs, of those ``queued``: a whole
    array's job id where every queued task of it is needed, else the task ids (a short dependency for the
    controller to test, however many variants)."""
    needed_ids = {array.task_id(task) for array, task in needed}
    after = []
    for job_id in sorted({array.job_id for array, _ in needed}):
        ids = {array.task_id(task) for array, task in queued if array.job_id == job_id}
        after += [job_id] if ids <= needed_ids else sorted(ids & needed_ids)
    return after


def submit_array(mode, todo, folder, location, command, config, workdir, after=()):
    """Submit one task per variant of ``todo`` as a job array that waits for the task ids ``after``; the
    ``ArrayJob``, or None when ``todo`` is empty. ``location`` names the setting that chose ``folder``."""
    if not todo:
        return None
    ensure_writable_dir(folder, location)
    array = ArrayJob(mode, folder, [Task(index, variant, tuple(command(variant))) for index, variant in enumerate(todo)])
    script = array.script(workdir)
    options = array.sbatch_options(f"sparsity-{mode}", config, after)
    array.job_id = slurm.submit(script, options)
    try:
        array.save(script, ["sbatch", "--parsable", *options])
    except BaseException:
        slurm.cancel(array.job_id)  # an array without its record could not be followed or skipped
        raise
    return array


def run_array(mode, todo, queued, folder, location, command, config, workdir, skipped, after=(), log=print,
              before=None):
    """Submit one task per variant of ``todo`` (nothing when empty), then wait for it and for ``queued`` (the
    ``(array, task)`` pairs already in the queue) if ``config.wait``. ``location`` names the setting that chose
    ``folder``; ``skipped`` says what needs no task; ``after``: task ids the array waits for. ``before``: an array
    submitted just before this one by the same command (its tasks are followed too)."""
    array = submit_array(mode, todo, folder, location, command, config, workdir, after)
    watched = [(a, task) for a in (before, array) if a for task in a.tasks]
    watched += queued
    log(submission_line(mode, array, queued, skipped, after))
    if not watched:
        return 0
    if not config.wait:
        first = watched[0][0]
        log(f"follow it: squeue --array --jobs {','.join(sorted({a.job_id for a, _ in watched}))}; "
            f"tail -f {first.log_path(watched[0][1])}; rerun this command with --wait to wait for the tasks and "
            f"report each variant (a rerun submits only variants neither done nor queued)")
        return 0
    return wait_for(watched, folder, log)


def submission_line(mode, array, queued, skipped, after):
    parts = []
    if array:
        names = " ".join(task.variant.name for task in array.tasks)
        parts.append(f"submitted job array {array.job_id}: {len(array.tasks)} {mode} tasks ({names})"
                     + (f", to start once {' '.join(after)} has ended" if after else ""))
    else:
        parts.append("nothing to submit")
    if queued:
        parts.append(f"{len(queued)} already queued ({' '.join(a.task_id(t) for a, t in queued)})")
    return "slurm: " + "; ".join(parts + [skipped])


def wait_for(watched, folder, log):
    """Poll squeue until every watched task has ended; one line per variant, then a summary line. Returns 1 if
    a task failed, else 0. Ctrl-C stops the waiting, not the tasks."""
    states, misses, started = {}, 0, time.monotonic()
    bar = tqdm(total=len(watched), desc="slurm tasks ended", unit="task", dynamic_ncols=True)
    try:
        while True:
            try:
                update_states(states, watched, slurm.queued_tasks())
                misses = 0
            except SchedulerError:
                misses += 1
                if misses == SQUEUE_TRIES:
                    raise
            bar.n = sum(state.state in (DONE, FAILED) for state in states.values())
            bar.set_postfix({name: sum(state.state == name for state in states.values())
                             for name in (PENDING, RUNNING, FAILED)})
            if bar.n == len(watched):
                break
            time.sleep(min(POLL_S, max(1.0, (time.monotonic() - started) / 10)))
    except KeyboardInterrupt:
        bar.close()
        report(watched, states, folder, log)
        raise Interrupted("the tasks go on running on the cluster; rerun the command with --wait to follow them "
                          "(it submits nothing that is still queued)") from None
    bar.close()
    return report(watched, states, folder, log)


def update_states(states, watched, queued):
    """``states``: task id -> TaskState of each watched task; a task that has ended stays ended."""
    for array, task in watched:
        key = array.task_id(task)
        if key not in states or states[key].state not in (DONE, FAILED):
            states[key] = array.state(task, queued)


def report(watched, states, folder, log):
    failed = []
    for array, task in watched:
        state = states.get(array.task_id(task))
        if state is None:  # interrupted before squeue first answered
            continue
        failed += [task.variant.name] if state.state == FAILED else []
        detail = f": {state.detail}" if state.detail else ""
        log(f"{task.variant.name}: {state.state.upper() if state.state == FAILED else state.state} "
            f"(task {array.task_id(task)}){detail}")
    done = sum(state.state == DONE for state in states.values())
    log(f"slurm: {done} done, {len(failed)} failed" + (f" ({' '.join(failed)})" if failed else "")
        + f", {len(watched) - done - len(failed)} still queued or running; logs in {folder}")
    return 1 if failed else 0
