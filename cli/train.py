"""--mode train: the training recipe's options, the Recipe they give, the command that reproduces a training run,
and the run itself (here, or submitted to Slurm)."""
import argparse

from cli import ROOT, TRAIN
from cli.launcher import device_from_args, slurm_config_from_args, task_command
from cli.variants import variants_from_args
from common.cli import fraction
from common.errors import UsageError
from common.io import ensure_writable_dir
from data.augment import AUGMENTATIONS
from data.registry import DATASETS, DEFAULT_DATASET, dataset_folder, get_dataset
from launch import SLURM
from launch.sweep import submit_training
from models import DEFAULT_MODEL, MODELS
from sparsity.methods import DEFAULT_METHOD
from training.adversarial import DEFAULT_ADV_STEPS
from training.loop import train_variants, training_summary_line
from training.precision import choose_training_mode, pinned_mode
from training.recipe import Recipe
from training.schedule import SCHEDULES

EXIT_DIVERGED = 1


RECIPE_FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "momentum": "--momentum",
                "weight_decay": "--weight-decay", "lr_step": "--lr-step", "lr_gamma": "--lr-gamma",
                "augment": "--augment", "train_per_class": "--train-per-class", "test_per_class": "--test-per-class",
                "schedule": "--schedule", "adv_steps": "--adv-steps", "adv_step_size": "--adv-step-size"}


def add_train_options(parser):
    group = parser.add_argument_group("training recipe (--mode train; defaults are the original repository's)")
    defaults = Recipe()

    def option(field, kind, help):
        parser.add_mode_options(group, (TRAIN,), RECIPE_FLAGS[field], type=kind, help=help)

    option("epochs", int, f"default {defaults.epochs}")
    option("batch_size", int, f"default {defaults.batch_size}")
    option("lr", float, f"SGD learning rate, default {defaults.lr:g}")
    option("momentum", float, f"default {defaults.momentum:g}")
    option("weight_decay", float, f"default {defaults.weight_decay:g}")
    option("lr_step", int, f"StepLR step in epochs, default {defaults.lr_step}")
    option("lr_gamma", float, f"StepLR factor, default {defaults.lr_gamma:g}")
    recipes = "; ".join(f"{d.name} {dict(d.recipe).get('schedule', defaults.schedule)}" for d in DATASETS.values())
    parser.add_mode_options(group, (TRAIN,), "--schedule", choices=SCHEDULES,
                            help=f"learning rate: step (StepLR, --lr-step/--lr-gamma), onecycle (warm-up to --lr, "
                                 f"then cosine annealing, per SGD step) or cosine (from --lr, per SGD step) "
                                 f"(default: the data set's recipe: {recipes})")
    option("adv_steps", int, f"PGD steps of --adv-train pgd (default {DEFAULT_ADV_STEPS})")
    parser.add_mode_options(group, (TRAIN,), "--adv-step-size", type=fraction, metavar="STEP",
                            help="step of --adv-train (default: pgd 2.5 x eps / steps, fgsm-rs 1.25 x eps)")
    option("train_per_class", int, "train on the first N images of each class (default: all)")
    option("test_per_class", int, "measure on the first N test images per class (default: all)")
    parser.add_mode_options(group, (TRAIN,), "--model", choices=list(MODELS),
                            help=f"architecture, from the model registry (default {DEFAULT_MODEL})")
    augment_defaults = "; ".join(f"{d.name} {d.augment}" for d in DATASETS.values())
    parser.add_mode_options(group, (TRAIN,), "--augment", choices=AUGMENTATIONS,
                            help=f"standard: pad-4 crop + flip; crop: pad-4 crop; original: flip, rotate 8 deg, "
                                 f"resized crop (default: the data set's: {augment_defaults})")
    parser.add_mode_options(group, (TRAIN,), "--classes", type=int, nargs="+", metavar="INDEX",
                            help="the data set's class indices to use, relabelled 0..k-1 in this order (default: all)")
    parser.add_mode_options(group, (TRAIN,), "--amp", action=argparse.BooleanOptionalAction, default=None,
                            help="bf16 autocast (default: whichever of fp32, fp32 + channels_last and bf16 + "
                                 "channels_last trains fastest here, measured once per machine and model and "
                                 "cached); the checkpoint's recipe records it; evaluation is always fp32")
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
    return Recipe.from_options(
        quick=args.quick, dataset=args.dataset or DEFAULT_DATASET, classes=args.classes,
        amp=args.amp if args.amp is not None else amp,
        model=args.model,
        **{field: getattr(args, field) for field in RECIPE_FLAGS})


def training_mode_from_args(args, device, recipe, measure=True):
    """--amp and --channels-last as given, the rest measured (training.precision); ``measure`` False (a Slurm
    submission, whose tasks train elsewhere): the device's default."""
    return choose_training_mode(device, recipe.model, get_dataset(recipe.dataset).input_shape, len(recipe.classes),
                                amp=args.amp, channels_last=args.channels_last, measure=measure)


def train_hint(variant, recipe, data_dir, models_dir, force=False):
    """The command that trains ``variant`` with ``recipe`` (a Recipe, or a checkpoint's recipe dict, whose amp
    setting is then stated as the device's default may differ) into ``models_dir``: what warnings and errors
    print, so that it reproduces the run they speak of."""
    from_checkpoint = isinstance(recipe, dict)
    recipe = recipe if from_checkpoint else recipe.to_dict()
    dataset = recipe.get("dataset", DEFAULT_DATASET)
    base = Recipe.from_options(quick=bool(recipe.get("quick")), dataset=dataset).to_dict()
    flags = ["--quick"] if recipe.get("quick") else []
    if dataset != DEFAULT_DATASET:
        flags += ["--dataset", dataset]
    if variant.is_baseline:
        flags += ["--baseline-only"]
    else:
        flags += ([] if variant.method == DEFAULT_METHOD else ["--method", variant.method])
        flags += ["--layers", variant.layer, "--strength", repr(variant.strength), "--no-baseline"]
    if variant.adv is not None:
        flags += ["--adv-train", variant.adv, "--adv-eps", repr(variant.adv_eps)]
    flags += ["--seed", str(variant.seed)]
    if recipe.get("model", DEFAULT_MODEL) != DEFAULT_MODEL:
        flags += ["--model", recipe["model"]]
    legacy = Recipe().to_dict()  # a checkpoint's recipe from before a knob existed had the knob's default
    for field, flag in RECIPE_FLAGS.items():
        value = recipe.get(field, legacy[field])
        if value != base[field] and value is not None:
            flags += [flag, str(value)]
    if list(recipe.get("classes", base["classes"])) != list(base["classes"]):
        flags += ["--classes", *map(str, recipe["classes"])]
    if from_checkpoint:
        flags += ["--amp" if recipe.get("amp") else "--no-amp"]
    flags += ["--data-dir", str(data_dir), "--models-dir", str(models_dir)] + (["--force"] if force else [])
    return " ".join(["python main.py --mode train", *flags])


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
