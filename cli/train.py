"""--mode train: the training recipe's options (declared with its fields), the Recipe they give, and the plan that
trains the selected models (here, or submitted to Slurm)."""
import argparse

from cli import TRAIN
from cli.launcher import SLURM, device_from_args, launch, slurm_config_from_args
from cli.specs import specs_from_args
from common.cli import add_config_options, config_options, given_options
from common.errors import UsageError
from common.io import ensure_writable_dir
from data.registry import DEFAULT_DATASET, get_dataset
from planner.plan import make_plan
from planner.tasks import Setup
from training.checkpoint import load_checkpoint
from training.loop import Outcome, outcome_line
from training.precision import choose_training_mode, pinned_mode
from training.recipe import Recipe


def add_train_options(parser):
    group = parser.add_argument_group("training recipe (--mode train; defaults are the original repository's)")
    add_config_options(parser, group, (TRAIN,), config_options(Recipe), lambda option: getattr(Recipe(), option.key))
    parser.add_mode_options(group, (TRAIN,), "--channels-last", action=argparse.BooleanOptionalAction, default=None,
                            help="the model and its batches in channels-last memory layout (default: measured, as "
                                 "--amp; a resumed run keeps its checkpoint's layout)")
    parser.add_mode_options(group, (TRAIN,), "--compile", action="store_true",
                            help="torch.compile the model for training (off by default: not yet measured on a GPU)")


def recipe_options(args, amp=None):
    """The recipe's options as given (with ``amp``, the precision chosen where --amp/--no-amp is not given), checked
    by building the recipe."""
    if args.adv_train is None and (args.adv_steps is not None or args.adv_step_size is not None):
        raise UsageError("--adv-steps and --adv-step-size shape adversarial training; add --adv-train and "
                         "--adv-eps, or leave them out")
    if args.adv_train == "fgsm-rs" and args.adv_steps is not None:
        raise UsageError("--adv-steps is for --adv-train pgd; fgsm-rs takes one step (leave --adv-steps out)")
    options = {"quick": args.quick, "amp": amp, **given_options(args, config_options(Recipe)),
               **({"model": args.model} if args.model else {})}
    dataset = args.dataset or DEFAULT_DATASET
    return dataset, options, Recipe.from_options(dataset=dataset, **options)


def run_train(args, parser):
    slurm = slurm_config_from_args(args)
    device = device_from_args(args, slurm)
    dataset, options, recipe = recipe_options(args)  # checked, like the pin, before anything is measured
    pinned_mode()
    specs = specs_from_args(args, dataset, recipe.model)
    # the precision is chosen here for every task (one recipe); a Slurm task's node measures the layout itself
    choice = choose_training_mode(device, recipe.model, get_dataset(dataset).input_shape, len(recipe.classes),
                                  amp=args.amp, channels_last=args.channels_last, measure=args.launcher != SLURM)
    if args.launcher != SLURM:
        print(choice.line(), flush=True)
        ensure_writable_dir(specs[0].folder(args.models_dir), "models_dir")
    _, options, _ = recipe_options(args, amp=choice.mode.amp)
    setup = Setup(args.models_dir, args.results_dir, args.data_dir, options, device=str(device),
                  train_threads=args.threads, channels_last=args.channels_last if args.launcher == SLURM
                  else choice.mode.channels_last, compile=args.compile, force=args.force)
    plan = make_plan(specs, setup, evaluate=False)
    diverged = [Outcome(task.spec, "skipped", metadata) for task in plan.done
                if (metadata := load_checkpoint(task.spec.checkpoint_path(args.models_dir))["metadata"])["status"]
                == "diverged"]
    for outcome in diverged:  # a diverged model is never left silently: it fails the command until retrained
        print(outcome_line(outcome))
    return launch(plan, setup, args, slurm) or (1 if diverged else 0)
