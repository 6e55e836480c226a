"""The launcher options (--launcher local or slurm and the Slurm job's settings), the device the variants run on,
and the command line each Slurm task runs."""
import sys

from cli import EVAL, ROOT, TRAIN
from cli.variants import selection_dests
from common.device import resolve_device
from launch import LAUNCHERS, LOCAL, SLURM
from launch.config import FIELDS as SLURM_FIELDS
from launch.config import SlurmConfig


def add_launcher_options(parser):
    group = parser.add_argument_group("launcher (--mode train and eval; docs/cluster.md)")

    def option(*flags, **kwargs):
        parser.add_mode_options(group, (TRAIN, EVAL), *flags, **kwargs)

    option("--launcher", choices=LAUNCHERS, default=LOCAL,
           help="local: run the variants here, one after another (default); slurm: submit one Slurm job array, one "
                "task per variant, and return")
    option("--partition", help="Slurm partition (default: the cluster's)")
    option("--time", help="time limit per task, in sbatch's format, e.g. 4:00:00")
    option("--cpus-per-task", type=int, metavar="N", help="CPU cores per task (its torch threads follow)")
    option("--mem", help="memory per task, e.g. 16G")
    option("--gpus-per-task", type=int, metavar="N", help="GPUs per task; tasks then run on cuda unless --device")
    option("--max-running", type=int, metavar="N", help="at most N tasks running at once")
    option("--sbatch-args", metavar="ARGS", help="further sbatch options as one string, e.g. "
                                                 "--sbatch-args='--account=lab --qos=long'")
    option("--wait", action="store_true", help="wait for the tasks and report each variant: done, failed (with its "
                                               "log) or still running")


def slurm_config_from_args(args):
    return SlurmConfig.from_options(args.launcher, **{field: getattr(args, field) for field in SLURM_FIELDS})


def device_from_args(args, slurm):
    """Where the variants run: this machine's device, or the one a Slurm task gets (fixed at submission)."""
    return slurm.task_device(args.device) if args.launcher == SLURM else resolve_device(args.device)


def task_command(parser, args, device, dataset):
    """``command(variant)``: the argv a Slurm task runs, this command for that variant alone, on the ``device``
    and ``dataset`` fixed at submission; ``parser``: main.py's, which parsed ``args``."""
    leave_out = {*selection_dests(parser), "launcher", "device", "dataset", *SLURM_FIELDS}
    shared = parser.command_line(args, leave_out=leave_out) + ["--dataset", dataset]

    def command(variant):
        return [sys.executable, str(ROOT / "main.py"), *shared, *variant.selection_flags(), "--seed",
                str(variant.seed), "--device", device.type]
    return command
