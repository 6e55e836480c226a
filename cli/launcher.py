"""Where a command's plan runs: --launcher local (here) or slurm (the Slurm job's settings), --workers, --print; and
the device the models run on."""
from cli import EVAL, TRAIN
from common.cli import at_least_one
from common.device import resolve_device
from planner.plan import run_local
from planner.slurm import FIELDS as SLURM_FIELDS
from planner.slurm import SlurmConfig, queued_keys, require_sbatch, submit_plan

LOCAL, SLURM = "local", "slurm"


def add_launcher_options(parser):
    group = parser.add_argument_group("launcher (--mode train and eval; docs/cluster.md)")

    def option(*flags, **kwargs):
        parser.add_mode_options(group, (TRAIN, EVAL), *flags, **kwargs)

    option("--launcher", choices=(LOCAL, SLURM), default=LOCAL,
           help="local: run the tasks here (default); slurm: submit them to Slurm, one job array per wave of tasks "
                "(the evaluations wait for the trainings and reference records they read), and return")
    option("--workers", type=at_least_one, metavar="N",
           help="local: evaluations N at once, each in a process of its own on --threads threads, their output in "
                "logs/ under --models-dir; trainings stay one at a time (default: every task in turn in this process)")
    option("--print", dest="print_plan", action="store_true",
           help="print the plan (each training and evaluation, what it waits for, the seed blocks) and run nothing")
    option("--partition", help="Slurm partition (default: the cluster's)")
    option("--time", help="time limit per task, in sbatch's format, e.g. 4:00:00")
    option("--cpus-per-task", type=int, metavar="N", help="CPU cores per task (its torch threads follow)")
    option("--mem", help="memory per task, e.g. 16G")
    option("--gpus-per-task", type=int, metavar="N", help="GPUs per task; tasks then run on cuda unless --device")
    option("--max-running", type=int, metavar="N", help="at most N tasks of an array running at once")
    option("--sbatch-args", metavar="ARGS", help="further sbatch options as one string, e.g. "
                                                 "--sbatch-args='--account=lab --qos=long'")
    option("--wait", action="store_true", help="wait for the tasks and report each one: done, or failed with its "
                                               "log")


def slurm_config_from_args(args):
    config = SlurmConfig.from_options(args.launcher, **{field: getattr(args, field) for field in SLURM_FIELDS})
    if args.launcher == SLURM:
        require_sbatch()
    return config


def device_from_args(args, slurm):
    """Where the models run: this machine's device, or a Slurm task's (fixed at submission, so that the skip rules
    checked here hold there): ``auto`` is cuda where the tasks ask for GPUs, cpu otherwise."""
    if args.launcher != SLURM:
        return resolve_device(args.device)
    return resolve_device(args.device) if args.device != "auto" else resolve_device(
        "cuda" if slurm.gpus_per_task else "cpu")


def pending_from_args(args, setup):
    """Tasks queued on Slurm from this models folder (an evaluation waits for their trainings)."""
    return queued_keys(setup.models_root) if args.launcher == SLURM else ()


def launch(plan, setup, args, slurm):
    """Run, submit or print ``plan``; returns the exit status (1 where a task failed)."""
    if args.print_plan:
        print(plan.describe())
        return 0
    if args.launcher == SLURM:
        return submit_plan(plan, setup, slurm)
    return 1 if run_local(plan, setup, args.workers, setup.models_root / "logs") else 0
