"""--mode train: the training recipe's options (declared with its fields), the Recipe they give, and the run itself
(here, or submitted to Slurm)."""
import argparse

from cli import ROOT, TRAIN
from cli.launcher import device_from_args, slurm_config_from_args, task_command
from cli.variants import variants_from_args
from common.cli import add_config_options, config_options, given_options
from common.errors import UsageError
from common.io import ensure_writable_dir
from data.registry import DEFAULT_DATASET, dataset_folder, get_dataset
from launch import SLURM
from launch.sweep import submit_training
from training.loop import train_variants, training_summary_line
from training.precision import choose_training_mode, pinned_mode
from training.recipe import Recipe

EXIT_DIVERGED = 1


def add_train_options(parser):
    group = parser.add_argument_group("training recipe (--mode train; defaults are the original repository's)")
    add_config_options(parser, group, (TRAIN,), config_options(Recipe), lambda option: getattr(Recipe(), option.key))
    parser.add_mode_options(group, (TRAIN,), "--channels-last", action=argparse.BooleanOptionalAction, default=None,
                            help="the model and its batches in channels-last memory layout (default: measured, as "
                                 "--amp; a resumed run keeps its checkpoint's layout)")
    parser.add_mode_options(group, (TRAIN,), "--compile", action="store_true",
                            help="torch.compile the model for training (off by default: not yet measured on a GPU)")


def recipe_from_args(args, amp=None):
    """The recipe the options give; ``amp``: the precision chosen where --amp/--no-amp is not given."""
    if args.adv_train is None and (args.adv_steps is not None or args.adv_step_size is not None):
        raise UsageError("--adv-steps and --adv-step-size shape adversarial training; add --adv-train and "
                         "--adv-eps, or leave them out")
    if args.adv_train == "fgsm-rs" and args.adv_steps is not None:
        raise UsageError("--adv-steps is for --adv-train pgd; fgsm-rs takes one step (leave --adv-steps out)")
    return Recipe.from_options(quick=args.quick, dataset=args.dataset or DEFAULT_DATASET,
                               **{"amp": amp, **given_options(args, config_options(Recipe))})


def training_mode_from_args(args, device, recipe, measure=True):
    """--amp and --channels-last as given, the rest measured (training.precision); ``measure`` False (a Slurm
    submission, whose tasks train elsewhere): the device's default."""
    return choose_training_mode(device, recipe.model, get_dataset(recipe.dataset).input_shape, len(recipe.classes),
                                amp=args.amp, channels_last=args.channels_last, measure=measure)


def run_train(args, parser):
    slurm = slurm_config_from_args(args)
    device = device_from_args(args, slurm)
    recipe = recipe_from_args(args)  # checked, like the pin, before anything is measured
    pinned_mode()
    variants = variants_from_args(args)
    models_dir = dataset_folder(args.models_dir, recipe.dataset)
    if args.launcher == SLURM:
        # every task trains in the precision planned here (one recipe for the sweep); each task's node measures
        # the memory layout for itself where the user did not choose it
        args.amp = training_mode_from_args(args, device, recipe, measure=False).mode.amp
        recipe = recipe_from_args(args)
        return submit_training(variants, recipe, args.data_dir, models_dir, slurm,
                               task_command(parser, args, device, recipe.dataset), ROOT, force=args.force)
    for folder in sorted({variant.checkpoint_path(models_dir).parent for variant in variants}):
        ensure_writable_dir(folder, "models_dir")
    choice = training_mode_from_args(args, device, recipe)
    print(choice.line(), flush=True)
    recipe = recipe_from_args(args, amp=choice.mode.amp)
    outcomes = train_variants(variants, recipe, args.data_dir, models_dir, device, force=args.force,
                              channels_last=choice.mode.channels_last, compile=args.compile)
    print(training_summary_line(outcomes, models_dir))
    return EXIT_DIVERGED if any(o.metadata["status"] == "diverged" for o in outcomes) else 0
