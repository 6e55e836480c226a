"""--mode eval: the evaluation protocol's options (declared with EvalConfig's fields and each attack's settings),
the EvalConfig they give, and the plan that evaluates the selected models (here, or submitted to Slurm)."""
import sys

from cli import EVAL
from cli.launcher import device_from_args, launch, pending_from_args, slurm_config_from_args
from cli.run_options import chosen_dataset, chosen_model
from cli.specs import specs_from_args
from common.cli import add_config_options, given_options
from common.errors import FileProblem
from common.io import ensure_writable_dir
from data.registry import get_dataset
from evaluation.config import EvalConfig
from planner.plan import make_plan
from planner.tasks import Setup
from records.summary import format_summary_table


def add_eval_options(parser):
    group = parser.add_argument_group("evaluation (--mode eval; defaults: the protocol of docs/usage.md)")
    defaults = EvalConfig().option_values()
    add_config_options(parser, group, (EVAL,), EvalConfig.options(), lambda option: defaults[option.key])


def eval_config_from_args(args, dataset):
    options = given_options(args, EvalConfig.options())
    if options.get("eps_sweep") == ():  # --eps-sweep alone: the data set's
        options["eps_sweep"] = get_dataset(dataset).eps_sweep
    return EvalConfig.from_options(quick=args.quick, dataset=dataset, **options)


def run_eval(args, parser):
    slurm = slurm_config_from_args(args)
    device = device_from_args(args, slurm)
    dataset = chosen_dataset(args, args.models_dir, "checkpoints")
    specs = specs_from_args(args, dataset, chosen_model(args, args.models_dir, dataset))
    setup = Setup(args.models_dir, args.results_dir, args.data_dir, {"quick": args.quick},
                  eval_config_from_args(args, dataset), device=str(device), eval_threads=args.threads,
                  force=args.force)
    setup.store.records(dataset)  # a malformed or foreign result file stops the run before any attack
    plan = make_plan(specs, setup, train=False, pending=pending_from_args(args, setup))
    if not plan.tasks and not plan.done:
        raise FileProblem(f"no finished checkpoint for any of the {len(specs)} selected models in "
                          f"{specs[0].folder(args.models_dir)} (the first: {plan.not_ready[0][1]})", "models_dir")
    for _, why in plan.not_ready:
        print(f"warning: {why}", file=sys.stderr, flush=True)
    ensure_writable_dir(specs[0].folder(args.results_dir), "results_dir")
    try:
        status = launch(plan, setup, args, slurm)
    finally:  # also where Ctrl-C stopped it: summary.csv lists what finished
        if not args.print_plan and (args.launcher != "slurm" or slurm.wait):
            setup.store.write_summary(dataset)
    if not args.print_plan and (args.launcher != "slurm" or slurm.wait):
        shown = [record for record in setup.store.records(dataset) if record.spec in set(specs)]
        print(format_summary_table(shown))
        print(f"evaluation: results in {specs[0].folder(args.results_dir)} (summary.csv lists every model there)")
    return status
