"""A plan on a Slurm cluster through submitit: one job array per wave, each waiting (``afterany``) for those it needs.
Small clusters lack sacct, so a ticket (job id) per task is kept beside the logs, its state read from squeue and result.
"""
import contextlib
import getpass
import io
import json
import os
import pickle
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, fields
from pathlib import Path

import submitit
from tqdm import tqdm

from common import validation
from common.cli import Interrupted
from common.errors import ConfigError, SchedulerError
from common.io import atomic_write_json, ensure_writable_dir
from planner.plan import waves
from planner.tasks import run_task

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "slurm"  # under the models' root: the tickets, submitit's scripts and pickles, the tasks' logs
TICKETS = "tickets.json"
POLL_S = 30  # squeue is asked every second at first, then less often, at last every POLL_S seconds
RESERVED = ("array", "output", "error", "open-mode", "parsable", "dependency", "wrap", "job-name", "a", "o", "e", "d",
            "J")


@dataclass(frozen=True)
class SlurmConfig:
    """Per-task resources (None: the cluster's default), extra sbatch options, and whether to wait for the tasks."""

    partition: str | None = None
    time: str | None = None  # sbatch's format: minutes, [D-]HH:MM:SS, ...
    cpus_per_task: int | None = None
    mem: str | None = None  # sbatch's format: 16G, 4000M, ...
    gpus_per_task: int | None = None
    max_running: int | None = None  # at most this many tasks of an array at once
    sbatch_args: tuple = ()
    wait: bool = False

    @classmethod
    def from_options(cls, launcher, sbatch_args=None, **options):
        """The config of a command line (None: not given; an error without --launcher slurm); ``sbatch_args``: one
        string of shell words."""
        given = {key: value for key, value in options.items() if value is not None and value is not False}
        if sbatch_args is not None:
            given["sbatch_args"] = sbatch_args
        if launcher != "slurm" and given:
            raise ConfigError(next(iter(given)), "applies to --launcher slurm only; add --launcher slurm or leave it "
                                                 "out")
        if "sbatch_args" in given:
            try:
                given["sbatch_args"] = tuple(shlex.split(sbatch_args))
            except ValueError as err:
                raise ConfigError("sbatch_args", f"is not a list of shell words ({err})") from None
        config = cls(**given)
        for field in ("cpus_per_task", "gpus_per_task", "max_running"):
            if getattr(config, field) is not None:
                validation.integer(getattr(config, field), field, minimum=1)
        for field in ("partition", "time", "mem"):
            value = getattr(config, field)
            if value is not None and (not value or any(c.isspace() for c in value)):
                raise ConfigError(field, f"must be one word, not {value!r}")
        config.extra_parameters()
        return config

    def extra_parameters(self):
        """``--sbatch-args`` as sbatch parameters (``{"account": "lab"}``); a ConfigError for one the planner sets."""
        extra, name = {}, None
        for arg in self.sbatch_args:
            if not arg.startswith("-") and name is not None:  # "--account lab": the value of the option before
                extra[name], name = arg, None
                continue
            name, _, value = arg.lstrip("-").partition("=")
            if name in RESERVED:
                raise ConfigError("sbatch_args", f"must not set {arg.split('=')[0]}: the planner sets it (one array "
                                                 f"task per model, logs beside the checkpoints)")
            extra[name] = value or True
        return extra

    def executor(self, folder):
        executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
        chosen = {name: getattr(self, name) for name in ("partition", "time", "cpus_per_task", "mem", "gpus_per_task")
                  if getattr(self, name) is not None}
        executor.update_parameters(job_name="sparsity", stderr_to_stdout=True, **chosen,
                                   array_parallelism=self.max_running or 256,
                                   additional_parameters={"requeue": True, **self.extra_parameters()},
                                   # without CPU binding a task sees every core of its node: as many threads as given
                                   setup=[f'export PYTHONPATH={shlex.quote(str(ROOT))}"${{PYTHONPATH:+:$PYTHONPATH}}"',
                                          'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-}}"'])
        return executor


FIELDS = tuple(field.name for field in fields(SlurmConfig))


def require_sbatch():
    if shutil.which("sbatch") is None:
        raise ConfigError("launcher", "slurm needs Slurm's sbatch on PATH: run this on the cluster's login node, or "
                                      "use --launcher local")


def queued():
    """``{job id: (state, reason)}`` of this user's jobs still pending or running (array tasks as ``123_4``)."""
    try:
        result = subprocess.run(["squeue", "--noheader", "--array", f"--user={getpass.getuser()}", "--format=%i|%T|%r"],
                                capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SchedulerError(f"squeue failed ({err}); is the Slurm controller up (scontrol ping)?") from None
    if result.returncode != 0:
        raise SchedulerError(f"squeue failed ({result.stderr.strip()}); is the Slurm controller up (scontrol ping)?")
    rows = (line.strip().split("|", 2) for line in result.stdout.splitlines())
    return {job: (state.lower(), reason) for job, state, reason in rows}


def _run(task, setup):
    """What a job runs on its node; SIGTERM ends it at once (submitit's handler would run on beside its requeue)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    print(f"[slurm] {task.key}: restart {os.environ.get('SLURM_RESTART_COUNT', '0')}", flush=True)
    line = run_task(task, setup)
    print(line, flush=True)
    return line


class Tickets:
    """The job id of each task submitted from one folder (a rerun does not submit a task still queued)."""

    def __init__(self, folder):
        self.path = Path(folder) / TICKETS
        self.jobs = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def add(self, jobs):
        self.jobs.update(jobs)
        atomic_write_json(self.path, self.jobs, location="models_dir")

    def state(self, key, in_queue):
        """``(state, detail)`` of the task's last job: pending or running (squeue), done, or failed."""
        job = self.jobs.get(key)
        if job is None:
            return "failed", "never submitted"
        if job in in_queue:
            return in_queue[job]
        paths = submitit.core.utils.JobPaths(self.path.parent, job_id=job, task_id=0)
        log = paths.stdout
        if not paths.result_pickle.is_file():
            return "failed", f"ended without a result (cancelled, out of time or memory, or its node failed); log {log}"
        with open(paths.result_pickle, "rb") as handle:
            outcome, value = pickle.load(handle)
        if outcome == "success":
            return "done", value
        return "failed", f"{str(value).strip().splitlines()[-1]}; log {log}"


def queued_keys(models_root):
    tickets, in_queue = Tickets(Path(models_root) / FOLDER), queued()
    return {key for key, job in tickets.jobs.items() if job in in_queue}


def submit_plan(plan, setup, config, log=print):
    """Submit ``plan``'s tasks not already queued, one array per wave; wait and report where ``config.wait``.
    Returns the exit status."""
    require_sbatch()
    folder = ensure_writable_dir(Path(setup.models_root) / FOLDER, "models_dir")
    tickets, in_queue = Tickets(folder), queued()
    waiting = [task for task in plan.tasks if tickets.jobs.get(task.key) in in_queue]
    todo = [task for task in plan.tasks if task not in waiting]
    job_of = {key: job for key, job in tickets.jobs.items() if job in in_queue}
    lines = []
    for wave in waves(todo):  # every block at once: on a cluster blocks need not wait for each other
        after = sorted({job_of[need].split("_")[0] for task in wave for need in task.needs if need in job_of})
        executor = config.executor(folder)
        if after:
            executor.update_parameters(dependency="afterany:" + ":".join(after))
        try:  # submitit prints sbatch's refusal itself: the one line below says it instead
            with contextlib.redirect_stderr(io.StringIO()), executor.batch():
                jobs = [executor.submit(_run, task, setup) for task in wave]
        except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, OSError) as err:
            answer = str(err).strip().splitlines()[-1].split("error:", 1)[-1].strip()
            raise SchedulerError(f"Slurm refused the job array ({answer}); nothing more was submitted; check "
                                 f"--partition, --time, --mem, --cpus-per-task, --gpus-per-task and --sbatch-args "
                                 f"(sinfo lists the partitions)") from None
        new = {task.key: job.job_id for task, job in zip(wave, jobs)}
        tickets.add(new)
        job_of.update(new)
        lines.append(f"slurm: submitted job array {jobs[0].job_id.split('_')[0]}: {len(wave)} {wave[0].kind} "
                     f"tasks ({' '.join(task.spec.name for task in wave)})"
                     + (f", to start once {' '.join(after)} has ended" if after else ""))
    queued_jobs = " ".join(tickets.jobs[task.key] for task in waiting)
    queued_text = f"; {len(waiting)} already queued ({queued_jobs})" if waiting else ""
    log("\n".join(lines or ["slurm: nothing to submit"]) + queued_text + f"; {len(plan.done)} done already")
    if not config.wait or not plan.tasks:
        if plan.tasks:
            log(f"follow it: squeue --me; logs in {folder}; rerun this command with --wait to wait for the tasks and "
                f"report each one (a rerun submits only what is neither done nor queued)")
        return 0
    return wait_for(plan.tasks, tickets, folder, log)


def wait_for(tasks, tickets, folder, log):
    """Poll squeue until every task has left the queue; one line per task, then a summary. Ctrl-C stops the waiting,
    not the tasks."""
    started = time.monotonic()
    with tqdm(total=len(tasks), desc="slurm tasks ended", unit="task") as bar:
        try:
            while True:
                in_queue = queued()
                states = {task.key: tickets.state(task.key, in_queue) for task in tasks}
                bar.n = sum(state in ("done", "failed") for state, _ in states.values())
                bar.refresh()
                if bar.n == len(tasks):
                    break
                time.sleep(min(POLL_S, max(1.0, (time.monotonic() - started) / 10)))
        except KeyboardInterrupt:
            raise Interrupted("the tasks go on running on the cluster; rerun the command with --wait to follow "
                              "them") from None
    failed = [task for task in tasks if states[task.key][0] == "failed"]
    for task in tasks:
        state, detail = states[task.key]
        log(f"{task.spec.name}: {'done' if state == 'done' else 'FAILED'} (job {tickets.jobs[task.key]})"
            + (f": {detail}" if state != "done" else ""))
    log(f"slurm: {len(tasks) - len(failed)} done, {len(failed)} failed"
        + (f" ({' '.join(task.spec.name for task in failed)})" if failed else "") + f"; logs in {folder}")
    return 1 if failed else 0
