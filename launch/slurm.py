"""Slurm's commands: sbatch submits one array (the script on stdin, so a refused job leaves no file behind),
squeue lists the tasks still queued or running, scancel withdraws an array.

Nothing here needs accounting storage (sacct): a task that has left the queue
is judged by the exit marker its script writes to its log (launch.array).
"""
import getpass
import shutil
import subprocess

from common.errors import ConfigError, SchedulerError

TIMEOUT_S = 120  # squeue and sbatch retry on their own; past this the controller is not answering


def require_sbatch():
    """ConfigError unless Slurm's client commands are on PATH."""
    if shutil.which("sbatch") is None:
        raise ConfigError("launcher", "slurm needs Slurm's sbatch on PATH: run this on the cluster's login node, or "
                                      "use --launcher local")


def _run(argv, stdin=None):
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SchedulerError(f"{argv[0]} failed ({err}); is the Slurm controller up (scontrol ping)?") from None


def _answer(result):
    """Slurm's last error line without its ``sbatch: error:`` prefix."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    lines = lines or [f"exit status {result.returncode}"]
    return lines[-1].split("error:", 1)[-1].strip()


def submit(script, options):
    """Queue ``script`` with sbatch ``options``; returns the job id. A refusal raises SchedulerError and queues
    nothing (one sbatch call submits the whole array or none of it)."""
    result = _run(["sbatch", "--parsable", *options], stdin=script)
    if result.returncode != 0:
        raise SchedulerError(f"Slurm refused the job array ({_answer(result)}); nothing was submitted; check "
                             f"--partition, --time, --mem, --cpus-per-task, --gpus-per-task and --sbatch-args "
                             f"(sinfo lists the partitions)")
    return result.stdout.strip().split(";")[0]  # --parsable prints "jobid" or "jobid;cluster"


def queued_tasks():
    """``{(array job id, task index): (state, reason)}`` of this user's array tasks still pending or running
    (squeue lists a task until it has ended, then it is gone)."""
    result = _run(["squeue", "--noheader", "--array", f"--user={getpass.getuser()}", "--format=%F|%K|%T|%r"])
    if result.returncode != 0:
        raise SchedulerError(f"squeue failed ({_answer(result)}); is the Slurm controller up (scontrol ping)?")
    tasks = {}
    for line in result.stdout.splitlines():
        job, task, state, reason = line.strip().split("|", 3)
        if task.isdigit():  # "N/A" for a job that is not an array
            tasks[(job, int(task))] = (state.lower(), reason)
    return tasks


def cancel(job_id):
    _run(["scancel", str(job_id)])
