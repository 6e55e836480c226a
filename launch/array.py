"""One Slurm job array: its tasks (one variant each), the script they run, the record kept beside their logs,
and each task's state.

Files, in the folder of what the mode writes (``trained-models/slurm/`` for
train, ``results/{method}/slurm/`` for eval): ``{mode}-{job}.sh`` (the script as
submitted), ``{mode}-{job}.json`` (the record: the sbatch command, and per task
its variant, command and log) and ``{mode}-{job}_{task}.log`` (what the task
printed, and Slurm's own messages such as a time limit; a requeued task
appends to it). A task in squeue is pending or running; once it has left the
queue, the exit marker its script wrote last says done or failed (no accounting
storage, sacct, is needed).
"""
import json
import re
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from common.errors import FileProblem
from common.io import atomic_write_json, atomic_write_text
from sparsity.variants import Variant

FORMAT = "sparsity-robustness/slurm-array"
FOLDER = "slurm"
MARKER = re.compile(r"\[slurm\] (?:started|exit status (\d+))")
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


@dataclass(frozen=True)
class Task:
    index: int
    variant: Variant
    command: tuple  # argv: the main.py command for this variant alone


@dataclass(frozen=True)
class TaskState:
    state: str  # PENDING, RUNNING, DONE or FAILED
    detail: str = ""  # why pending, how it failed


@dataclass
class ArrayJob:
    mode: str  # "train" or "eval"
    folder: Path  # where its script, record and logs live
    tasks: list
    job_id: str | None = None  # set once submitted

    def log_pattern(self):
        """sbatch's --output: %A is the array's job id, %a the task index."""
        return str(self.folder / f"{self.mode}-%A_%a.log")

    def log_path(self, task):
        return self.folder / f"{self.mode}-{self.job_id}_{task.index}.log"

    def record_path(self):
        return self.folder / f"{self.mode}-{self.job_id}.json"

    def task_id(self, task):
        return f"{self.job_id}_{task.index}"

    def sbatch_options(self, name, config, after=()):
        """The array's sbatch options: its tasks, their logs (appended to when a task is requeued), requeueing
        on preemption or node failure (training then resumes from its last epoch checkpoint), the tasks it
        waits for, and the config's resources."""
        spec = f"0-{len(self.tasks) - 1}" + (f"%{config.max_running}" if config.max_running else "")
        options = [f"--job-name={name}", f"--array={spec}", f"--output={self.log_pattern()}", "--open-mode=append",
                   "--requeue"]
        if after:
            # afterany, not afterok: a failed training must not hold back the other variants' evaluations; the
            # evaluation task of a variant whose training failed stops at once, its log naming the train command
            options.append("--dependency=afterany:" + ":".join(after))
        return options + config.sbatch_options()

    def script(self, workdir):
        """The batch script: each array task runs its own variant's command and writes exit markers."""
        lines = [
            "#!/bin/bash",
            f"# {self.mode}: one array task per variant, each running the main.py command for its variant alone",
            f"cd {shlex.quote(str(workdir))} || {{ echo '[slurm] exit status 2'; exit 2; }}",
            "# Without CPU binding a task sees every core of its node: use as many threads as it was given.",
            'if [ -n "${SLURM_CPUS_PER_TASK:-}" ] && [ -z "${OMP_NUM_THREADS:-}" ]; then',
            '  export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK"',
            "fi",
            'case "$SLURM_ARRAY_TASK_ID" in',
        ]
        for task in self.tasks:
            command = " ".join(shlex.quote(str(arg)) for arg in task.command)
            lines.append(f"  {task.index}) variant={shlex.quote(task.variant.name)}; command=({command}) ;;")
        lines += [
            "esac",
            'echo "[slurm] started task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} ($variant) on $(hostname) at '
            '$(date \'+%F %T\'), restart ${SLURM_RESTART_COUNT:-0}"',
            'echo "[slurm] command: ${command[*]}"',
            '"${command[@]}"',
            "status=$?",
            'echo "[slurm] exit status $status"',
            'exit "$status"',
        ]
        return "\n".join(lines) + "\n"

    def save(self, script, sbatch_argv):
        """Keep the script and the record beside the logs (after submission: the job id names them)."""
        atomic_write_text(self.record_path().with_suffix(".sh"), script)
        atomic_write_json(self.record_path(), {
            "format": FORMAT,
            "mode": self.mode,
            "job_id": self.job_id,
            "submitted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sbatch": list(sbatch_argv),
            "tasks": [{"index": task.index, "variant": task.variant.to_record(), "command": list(task.command),
                       "log": str(self.log_path(task))} for task in self.tasks],
        })

    @classmethod
    def load(cls, path):
        path = Path(path)
        try:
            record = json.loads(path.read_text())
            if record.get("format") != FORMAT:
                raise ValueError(f"format {record.get('format')!r}")
            tasks = [Task(t["index"], Variant.from_record(t["variant"]), tuple(t["command"])) for t in record["tasks"]]
            return cls(record["mode"], path.parent, tasks, record["job_id"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise FileProblem(f"{path} is not a readable job array record ({err!r}); delete it") from None

    def state(self, task, queued):
        """The task's TaskState; ``queued`` is ``slurm.queued_tasks()``."""
        in_queue = queued.get((self.job_id, task.index))
        if in_queue is not None:
            state, reason = in_queue
            if state == PENDING:
                return TaskState(PENDING, reason)
            return TaskState(RUNNING, "" if state == RUNNING else state)
        log = self.log_path(task)
        try:
            text = log.read_text(errors="replace")
        except OSError:
            return TaskState(FAILED, f"no log {log}: the task never started (cancelled while pending, or its node "
                                     f"cannot write this folder: it must be on a file system the nodes share)")
        markers = list(MARKER.finditer(text))
        status = markers[-1].group(1) if markers else None
        if status == "0":
            return TaskState(DONE)
        ending = "exit status " + status if status else ("ended without an exit status (cancelled, out of time or "
                                                         "memory, or its node failed)")
        return TaskState(FAILED, f"{ending}; log {log}" + (f": {last_line(text)}" if last_line(text) else ""))


def last_line(text, width=300):
    """The last line the log shows (a progress bar redraws its line with carriage returns), markers left out."""
    lines = [line.rsplit("\r", 1)[-1].strip() for line in text.split("\n")]
    lines = [line for line in lines if line and not line.startswith("[slurm]")]
    return lines[-1][:width] if lines else ""


def queued_arrays(folder, mode, queued):
    """``{variant: (array, task)}`` for the tasks of ``mode`` recorded in ``folder`` that are still queued or
    running: a rerun does not submit them again, and waits for them."""
    found = {}
    for job_id in sorted({job for job, _ in queued}):
        path = Path(folder) / f"{mode}-{job_id}.json"
        if not path.exists():
            continue
        array = ArrayJob.load(path)
        for task in array.tasks:
            if (job_id, task.index) in queued:
                found[task.variant] = (array, task)
    return found
