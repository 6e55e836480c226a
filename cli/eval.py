"""--mode eval: the evaluation protocol's options (declared with EvalConfig's fields and each attack's settings),
the EvalConfig they give, and the run itself (here, or submitted to Slurm)."""
from cli import EVAL, ROOT
from cli.launcher import device_from_args, slurm_config_from_args, task_command
from cli.run_options import chosen_dataset
from cli.variants import method_from_args, variants_from_args
from common.cli import add_config_options, given_options
from common.io import ensure_writable_dir
from data.registry import dataset_folder, get_dataset
from evaluation.config import EvalConfig
from evaluation.runner import evaluate_variants
from launch import SLURM
from launch.sweep import submit_evaluation


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
    variants = variants_from_args(args)
    dataset = chosen_dataset(args, args.models_dir,
                             lambda folder: any(v.checkpoint_path(folder).exists() for v in variants),
                             "checkpoints of the selected variants")
    config = eval_config_from_args(args, dataset)  # each variant's attacks are seeded by its own seed
    method = method_from_args(args)
    models_dir, results_dir = dataset_folder(args.models_dir, dataset), dataset_folder(args.results_dir, dataset)
    if args.launcher == SLURM:
        return submit_evaluation(variants, method, models_dir, results_dir, args.data_dir, device, config, slurm,
                                 task_command(parser, args, device, dataset), ROOT, force=args.force, dataset=dataset)
    ensure_writable_dir(results_dir / method, "results_dir")
    evaluate_variants(variants, method, models_dir, results_dir, args.data_dir, device, config, force=args.force,
                      dataset=dataset)
    return 0
