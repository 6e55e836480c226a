"""Real-data experiment: python main.py --mode train|eval|vis [--dropout] [--layers conv1 conv2 ...].

Maps flags to configuration objects (Recipe, EvalConfig, the list of variants)
and dispatches to the packages, where the work lives. Every option says which
modes it applies to; one given to another mode is an error.
"""
import argparse
import sys
from pathlib import Path

from attacks import ATTACKS
from attacks.adaptive import ADAPTIVE
from attacks.base import LOSSES
from attacks.nes import MODES as NES_MODES
from attacks.nes import schedule_text
from common.cli import ArgumentParser, Interrupted, fraction, run_main
from common.device import DEFAULT_THREADS, DEVICE_CHOICES, cpu_threads, default_threads, resolve_device
from common.errors import UsageError
from common.io import ensure_writable_dir
from data.augment import AUGMENTATIONS
from data.registry import DATASETS, DEFAULT_DATASET, dataset_folder, datasets_in, get_dataset
from evaluation.config import EvalConfig
from evaluation.config import QUICK as EVAL_QUICK
from evaluation.minimal import LIMIT_PER_EPS
from evaluation.minimal import NORMS as MINIMAL_NORMS
from evaluation.runner import evaluate_variants
from launch import LAUNCHERS, LOCAL, SLURM
from launch.config import FIELDS as SLURM_FIELDS
from launch.config import SlurmConfig
from launch.sweep import submit_evaluation, submit_training
from models import DEFAULT_MODEL, MODELS, layer_names
from sparsity.methods import DEFAULT_METHOD, METHODS
from sparsity.variants import select_variants, validate_layers
from training.loop import train_variants, training_summary_line
from training.adversarial import ADV_TRAININGS, DEFAULT_ADV_STEPS
from training.precision import choose_training_mode, pinned_mode
from training.recipe import QUICK as TRAIN_QUICK
from training.schedule import SCHEDULES
from training.recipe import QUICK_STEPS, Recipe
from vis.report import make_figures

ROOT = Path(__file__).resolve().parent
DEFAULT_DIRS = {"data_dir": ROOT / "datasets", "models_dir": ROOT / "trained-models", "results_dir": ROOT / "results"}
EXIT_DIVERGED = 1
TRAIN, EVAL, VIS = "train", "eval", "vis"
INTERRUPTED = {
    TRAIN: "completed epochs are checkpointed; rerun the same command to resume",
    EVAL: "finished variants are saved and summary.csv lists them; rerun the same command to evaluate the rest",
    VIS: "no figure was left half-written; rerun the command",
}


# ---- options shared by several modes ----------------------------------------------------------

def add_variant_options(parser):
    group = parser.add_argument_group("variants (method, layer, strength, seed)")
    method = group.add_mutually_exclusive_group()
    method.add_argument("--method", choices=list(METHODS), default=None,
                        help=f"sparsity method (default {DEFAULT_METHOD})")
    method.add_argument("--dropout", action="store_true", help="same as --method dropout (the original spelling)")
    layers = layer_names()
    group.add_argument("--layers", nargs="+", default=None, metavar="LAYER",
                       help=f"layers to regularise, space- or comma-separated (default: every layer of the model; "
                            f"{DEFAULT_MODEL}: {' '.join(layers)})")
    strengths = group.add_mutually_exclusive_group()
    defaults = "; ".join(f"{m.name} {m.default_strength:g}" for m in METHODS.values())
    parser.add_mode_options(strengths, (TRAIN, EVAL), "--strength", type=float,
                            help=f"one strength (default: {defaults})")
    parser.add_mode_options(strengths, (TRAIN, EVAL), "--strengths", type=float, nargs="+", metavar="S",
                            help="several strengths")
    sweeps = "; ".join(f"{m.name} {' '.join(f'{s:g}' for s in m.sweep)}" for m in METHODS.values())
    parser.add_mode_options(strengths, (TRAIN, EVAL), "--sweep", action="store_true",
                            help=f"the original sweep: {sweeps}")
    seeds = group.add_mutually_exclusive_group()
    parser.add_mode_options(seeds, (TRAIN, EVAL), "--seed", type=int, default=0,
                            help="seed of every variant: initialisation, data order, dropout, and in eval its attacks, "
                                 "targets and query subset (default 0)")
    parser.add_mode_options(seeds, (TRAIN, EVAL), "--seeds", type=int, nargs="+", metavar="SEED",
                            help="several seeds")
    baseline = group.add_mutually_exclusive_group()
    baseline.add_argument("--no-baseline", action="store_true", help="leave out the unregularised 'standard' baseline")
    parser.add_mode_options(baseline, (TRAIN, EVAL), "--baseline-only", action="store_true",
                            help="only the 'standard' baseline (e.g. one job of a job array)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--adv-train", choices=ADV_TRAININGS, default=None,
                            help="adversarial training of every selected variant, part of its identity and file "
                                 "names: pgd (Madry et al. 2018) or fgsm-rs (FGSM from a random start, Wong et al. "
                                 "2020); needs --adv-eps (default: standard training)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--adv-eps", type=fraction, default=None, metavar="EPS",
                            help="L-inf budget of --adv-train, in (0, 1], e.g. 0.1 or 8/255")


def add_run_options(parser):
    group = parser.add_argument_group("data, files and device")
    group.add_argument("--dataset", choices=list(DATASETS), default=None,
                       help=f"train: the data set (default {DEFAULT_DATASET}); eval and vis read it from the "
                            f"checkpoints and results, and need it only to choose when the folders hold several")
    parser.add_mode_options(group, (TRAIN, EVAL), "--device", choices=DEVICE_CHOICES, default="auto",
                            help="auto: cuda, then mps, then cpu")
    parser.add_mode_options(group, (TRAIN, EVAL), "--threads", type=int,
                            help=f"torch CPU threads (default: OMP_NUM_THREADS where set, as in a Slurm task, else "
                                 f"{DEFAULT_THREADS}: on a small shared CPU more threads wait for busy cores)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--data-dir", type=Path, default=DEFAULT_DIRS["data_dir"],
                            help="the data sets' files (default datasets/): cifar-10-batches-py/ or "
                                 "cifar-10-python.tar.gz; Fashion-MNIST's and MNIST's idx files in fashion-mnist/ "
                                 "and mnist/ (Fashion-MNIST also from /usr/share/datasets/fashion-mnist/); "
                                 "cifar10-jpeg: its archive itself, or a folder with train/<class>/ and test/<class>/")
    parser.add_mode_options(group, (TRAIN, EVAL), "--models-dir", type=Path, default=DEFAULT_DIRS["models_dir"],
                            help="checkpoints, one folder per data set (default trained-models/)")
    parser.add_mode_options(group, (EVAL, VIS), "--results-dir", type=Path, default=DEFAULT_DIRS["results_dir"],
                            help="results, one folder per data set (default results/)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--quick", action="store_true",
                            help=f"CPU-sized presets to run the pipeline end to end in minutes, not for findings "
                                 f"(training: {TRAIN_QUICK} and at least {QUICK_STEPS} SGD steps; eval: {EVAL_QUICK});"
                                 f" flags override them")
    parser.add_mode_options(group, (TRAIN, EVAL), "--force", action="store_true",
                            help="redo variants that already have a checkpoint (train) or an up-to-date result (eval)")


def method_from_args(args):
    return "dropout" if args.dropout else args.method or DEFAULT_METHOD


def layers_from_args(args):
    """--layers accepts ``conv1 conv2``, ``conv1,conv2`` and the seed README's ``[conv1,conv2]``; default: every
    layer of the model (train: --model; eval and vis: the default model)."""
    if args.layers is None:
        return list(layer_names(args.model or DEFAULT_MODEL))
    return [layer for item in args.layers for layer in item.strip("[]").split(",") if layer]


def variants_from_args(args):
    """The variants a command acts on, from the method, --layers, strength and seed options and --no-baseline.
    Training checks the layers against its --model; eval and vis against every registered model."""
    method = METHODS[method_from_args(args)]
    if args.sweep:
        strengths = list(method.sweep)
    else:
        strengths = args.strengths or [args.strength if args.strength is not None else method.default_strength]
    seeds = args.seeds if args.seeds is not None else [args.seed]
    if args.adv_eps is not None and args.adv_train is None:
        raise UsageError(f"--adv-eps is the budget of adversarial training; add --adv-train "
                         f"{' or '.join(ADV_TRAININGS)}, or leave --adv-eps out")
    variants = select_variants(method.name, layers_from_args(args), strengths, seeds,
                               include_baseline=not args.no_baseline,
                               model=(args.model or DEFAULT_MODEL) if args.mode == TRAIN else None,
                               adv=args.adv_train, adv_eps=args.adv_eps)
    return [v for v in variants if v.is_baseline] if args.baseline_only else variants


# ---- train -----------------------------------------------------------------------------------

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


def run_train(args):
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
                               task_command(args, device, recipe.dataset), ROOT, force=args.force)
    for folder in sorted({variant.checkpoint_path(models_dir).parent for variant in variants}):
        ensure_writable_dir(folder, "models_dir")
    choice = training_mode_from_args(args, device, recipe)
    print(choice.line(), flush=True)
    recipe = recipe_from_args(args, amp=choice.mode.amp)
    outcomes = train_variants(variants, recipe, args.data_dir, models_dir, device, force=args.force,
                              channels_last=choice.mode.channels_last, compile=args.compile)
    print(training_summary_line(outcomes, models_dir))
    return EXIT_DIVERGED if any(o.metadata["status"] == "diverged" for o in outcomes) else 0


# ---- eval ------------------------------------------------------------------------------------

EVAL_FLAGS = {"steps": "--steps", "restarts": "--restarts", "n_eval": "--n-eval", "query_n": "--query-n",
              "square_queries": "--square-queries", "nes_steps": "--nes-steps", "nes_samples": "--nes-samples",
              "adaptive_steps": "--adaptive-steps", "fab_steps": "--fab-steps", "fab_restarts": "--fab-restarts",
              "minimal_targets": "--minimal-targets", "query_batch": "--query-batch",
              "batch_size": "--eval-batch-size", "check_n": "--check-n", "audit_n": "--audit-n"}


def samples_at_step(text):
    """``SAMPLES@STEP`` (an entry of --adaptive-schedule) -> (step, samples)."""
    samples, _, step = text.partition("@")
    try:
        return int(step), int(samples)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not SAMPLES@STEP (e.g. 1000@20)") from None


def schedule_entry(text):
    """argparse type of --adaptive-schedule: checked, and kept as written so that a command line handed to another
    process (a Slurm task) repeats it."""
    samples_at_step(text)
    return text


def add_eval_options(parser):
    group = parser.add_argument_group("evaluation (--mode eval; defaults: the protocol of docs/usage.md)")
    defaults = EvalConfig()

    def option(*flags, **kwargs):
        parser.add_mode_options(group, (EVAL,), *flags, **kwargs)

    option("--attacks", nargs="+", choices=list(ATTACKS), metavar="ATTACK",
           help=f"attacks to run, of {' '.join(ATTACKS)} (default: {' '.join(defaults.attacks)}; "
                f"--quick: {' '.join(EVAL_QUICK['attacks'])})")
    budgets = "; ".join(f"{d.name} {d.format_eps(d.eps)}" for d in DATASETS.values())
    steps = "; ".join(f"{d.name} {d.format_eps(d.step)}" for d in DATASETS.values())
    sweeps = "; ".join(f"{d.name} {' '.join(d.format_eps(e) for e in d.eps_sweep)}" for d in DATASETS.values())
    option("--eps", type=fraction, help=f"L-inf budget of every attack, in [0, 1] (default: the data set's: {budgets})")
    option("--alpha", type=fraction, help=f"step size of PGD and NES (default: the data set's: {steps})")
    option("--eps-sweep", type=fraction, nargs="*", metavar="EPS",
           help=f"also run the white-box attacks at each EPS for robustness curves (given alone: the data set's: "
                f"{sweeps})")
    option("--nes-sigma", type=fraction, help="NES sampling scale (default 1/255)")
    option("--nes-momenta", type=float, nargs="+", metavar="M", help="NES momentum values in [0, 1) (default 0 0.9)")
    option("--nes-modes", nargs="+", choices=NES_MODES, help="untargeted and/or targeted NES (default both)")
    option("--minimal-norms", nargs="+", choices=[*MINIMAL_NORMS, "none"], metavar="NORM",
           help="norms of the per-image minimal perturbation eps* (FAB and a PGD bisection), of linf l2, or none "
                "(default: linf l2)")
    option("--minimal-limit", type=fraction, metavar="EPS",
           help=f"L-inf search limit of eps*, in (0, 1] (L2: EPS x sqrt(pixels); default {LIMIT_PER_EPS} x --eps)")
    option("--nes-loss", choices=LOSSES, help="loss NES estimates the gradient of: ce (cross-entropy, default) or "
                                              "margin (logit margin)")
    option("--adaptive-schedule", type=schedule_entry, nargs="+", metavar="SAMPLES@STEP",
           help="nes_adaptive's antithetic pairs per estimate from each step on, increasing (default "
                f"{schedule_text(defaults.adaptive_schedule)}, Tramer et al. 2020; --quick: "
                f"{schedule_text(EVAL_QUICK['adaptive_schedule'])})")
    option("--audit-radii", nargs="+", metavar="EPS|Mx",
           help="AutoAttack (standard) at these L-inf radii, checked against the eps* curve: eps values (0.03) or "
                "multiples of the same-seed baseline's median eps* (1.5x; the model's own where the baseline has no "
                f"record yet), or none (default: {' '.join(defaults.audit_radii)})")
    option("--adaptive-attacks", nargs="+", metavar="NAME",
           help="adaptive attacks run on models with a k-WTA layer, at the audit radii, inside eps*: of "
                f"{' '.join(ADAPTIVE)}, or none (default: all)")
    helps = {"steps": "PGD steps", "restarts": "PGD random restarts",
             "n_eval": "attack the first N test images (default: all)",
             "query_n": "query-based attacks (NES, Square) on a seeded subset of N of them",
             "square_queries": "Square's query budget per image", "nes_steps": "NES iterations",
             "nes_samples": "antithetic pairs per NES gradient estimate",
             "adaptive_steps": "nes_adaptive's signed steps", "fab_steps": "FAB's iterations for eps*",
             "fab_restarts": "FAB's untargeted runs for eps* (the first from the clean image, then random starts)",
             "minimal_targets": "top classes of FAB-T and of the eps* bisection's APGD-T",
             "query_batch": "images per NES forward pass, even (default 4096 on CUDA, 64 otherwise)",
             "batch_size": "images per white-box attack batch", "check_n": "images for the sanity checks",
             "audit_n": "the audit's AutoAttack on the first N evaluated images (default: all; each radius costs "
                        "AutoAttack on every image still robust there)"}
    for field, flag in EVAL_FLAGS.items():
        default = getattr(defaults, field)
        aliases = ("--nes-n",) if field == "query_n" else ()  # the flag's earlier name
        option(flag, *aliases, dest=field if field != "batch_size" else "eval_batch_size", type=int, metavar="N",
               help=helps[field] + (f" (default {default})" if default is not None else ""))


def eval_config_from_args(args, dataset):
    eps_sweep = None if args.eps_sweep is None else tuple(args.eps_sweep or get_dataset(dataset).eps_sweep)
    return EvalConfig.from_options(
        quick=args.quick, dataset=dataset, attacks=args.attacks, eps=args.eps, alpha=args.alpha, eps_sweep=eps_sweep,
        nes_sigma=args.nes_sigma, nes_momenta=args.nes_momenta, nes_modes=args.nes_modes, nes_loss=args.nes_loss,
        adaptive_schedule=args.adaptive_schedule and list(map(samples_at_step, args.adaptive_schedule)),
        minimal_limit=args.minimal_limit,
        audit_radii=None if args.audit_radii is None else none_or(args.audit_radii, "--audit-radii"),
        adaptive_attacks=None if args.adaptive_attacks is None else none_or(args.adaptive_attacks,
                                                                            "--adaptive-attacks"),
        minimal_norms=None if args.minimal_norms is None else minimal_norms(args.minimal_norms),
        **{field: getattr(args, field if field != "batch_size" else "eval_batch_size") for field in EVAL_FLAGS})


def chosen_dataset(args, root, holds, what):
    """--dataset, else the one data set whose folder under ``root`` ``holds`` what the command needs (the default
    data set when none does); a UsageError when several do."""
    if args.dataset:
        return args.dataset
    found = datasets_in(root, holds)
    if len(found) > 1:
        raise UsageError(f"{root} holds {what} of several data sets ({', '.join(found)}); choose one with "
                         f"--dataset {found[0]}")
    return found[0] if found else DEFAULT_DATASET


def none_or(values, flag):
    """A list option that ``none`` (alone) turns off: the values, or ()."""
    if "none" in values and len(values) > 1:
        raise UsageError(f"{flag} none turns it off; give it alone")
    return () if values == ["none"] else tuple(values)


def minimal_norms(values):
    """--minimal-norms: the norms, or () for ``none`` (alone)."""
    if "none" in values and len(values) > 1:
        raise UsageError("--minimal-norms none turns the measure off; give it alone")
    return () if values == ["none"] else tuple(values)


def run_eval(args):
    slurm = slurm_config_from_args(args)
    device = device_from_args(args, slurm)
    variants = variants_from_args(args)
    dataset = chosen_dataset(args, args.models_dir,
                             lambda folder: any(v.checkpoint_path(folder).exists() for v in variants),
                             "checkpoints of the selected variants")
    config = eval_config_from_args(args, dataset)  # each variant's attacks are seeded by its own seed
    method = method_from_args(args)
    models_dir, results_dir = dataset_folder(args.models_dir, dataset), dataset_folder(args.results_dir, dataset)
    default_recipe = Recipe.from_options(quick=args.quick, dataset=dataset)

    def hint(variant, force=False, recipe=None):
        return train_hint(variant, recipe or default_recipe, args.data_dir, args.models_dir, force)

    if args.launcher == SLURM:
        return submit_evaluation(variants, method, models_dir, results_dir, args.data_dir, device, config, hint, slurm,
                                 task_command(args, device, dataset), ROOT, force=args.force, dataset=dataset)
    ensure_writable_dir(results_dir / method, "results_dir")
    evaluate_variants(variants, method, models_dir, results_dir, args.data_dir, device, config, hint,
                      force=args.force, dataset=dataset)
    return 0


# ---- launcher ---------------------------------------------------------------------------------

VARIANT_DESTS = ("layers", "strength", "strengths", "sweep", "seed", "seeds", "no_baseline", "baseline_only")


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


def task_command(args, device, dataset):
    """``command(variant)``: the argv a Slurm task runs, this command for that variant alone, on the ``device``
    and ``dataset`` fixed at submission."""
    leave_out = {*VARIANT_DESTS, "launcher", "device", "dataset", *SLURM_FIELDS}
    shared = build_parser().command_line(args, leave_out=leave_out) + ["--dataset", dataset]

    def command(variant):
        if variant.is_baseline:
            selection = ["--baseline-only"]
        else:
            selection = ["--layers", variant.layer, "--strength", repr(variant.strength), "--no-baseline"]
        return [sys.executable, str(ROOT / "main.py"), *shared, *selection, "--seed", str(variant.seed),
                "--device", device.type]
    return command


# ---- vis -------------------------------------------------------------------------------------

def eval_hint(method, layers, results_dir, dataset):
    """The eval command that produces results vis is missing (``layers`` None: the default ones)."""
    parts = ["python main.py --mode eval"]
    if dataset != DEFAULT_DATASET:
        parts.append(f"--dataset {dataset}")
    if method != DEFAULT_METHOD:
        parts.append(f"--method {method}")
    if layers is not None and tuple(layers) != tuple(layer_names()):
        parts.append("--layers " + " ".join(layers))
    if Path(results_dir).resolve() != DEFAULT_DIRS["results_dir"].resolve():
        parts.append(f"--results-dir {results_dir}")
    return " ".join(parts)


def run_vis(args):
    method = method_from_args(args)
    layers = None if args.layers is None else validate_layers(layers_from_args(args))
    dataset = chosen_dataset(args, args.results_dir, lambda folder: any((folder / method).glob("*.json")),
                             f"{method} results")
    results_dir = dataset_folder(args.results_dir, dataset)
    written = make_figures(results_dir, method, layers, include_baseline=not args.no_baseline,
                           eval_hint=lambda method, layers: eval_hint(method, layers, args.results_dir, dataset),
                           dataset=dataset)
    print(f"vis: wrote {len(written)} files to {results_dir / method} ({get_dataset(dataset).title}): "
          + ", ".join(sorted({path.stem for path in written})))
    return 0


# ---- dispatch --------------------------------------------------------------------------------

MODES = {TRAIN: run_train, EVAL: run_eval, VIS: run_vis}


def build_parser(help_mode=None):
    """The command line; ``help_mode``: a parser holding only that mode's options, for its --help."""
    epilog = ("Only the options of --mode {0} are listed; python main.py --help lists every mode's."
              if help_mode else "python main.py --mode MODE --help lists only that mode's options.")
    parser = ArgumentParser(prog="main.py", description=__doc__.splitlines()[0], help_mode=help_mode,
                            epilog=epilog.format(help_mode) + " Layout and data flow: docs/DESIGN.md.")
    parser.add_argument("--mode", required=True, choices=list(MODES))
    add_variant_options(parser)
    add_run_options(parser)
    add_train_options(parser)
    add_eval_options(parser)
    add_launcher_options(parser)
    return parser


def config_aliases(args):
    """Config fields whose flag has another name in this mode."""
    aliases = {"strengths": "--strength" if args.strength is not None else "--strengths", "seeds": "--seed" if args.seeds is None else "--seeds"}
    if args.mode == EVAL:
        aliases.update({field: flag for field, flag in EVAL_FLAGS.items()})
    else:
        aliases.update({field: flag for field, flag in RECIPE_FLAGS.items()})
    return aliases


def mode_asking_for_help(argv):
    """The mode of ``--mode MODE --help`` (its help lists that mode's options only), else None."""
    if not {"-h", "--help"} & set(argv):
        return None
    for token, following in zip(argv, [*argv[1:], None]):
        mode = token.split("=", 1)[1] if token.startswith("--mode=") else following if token == "--mode" else None
        if mode in MODES:
            return mode
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(help_mode=mode_asking_for_help(argv))
    args = parser.parse_args(argv)
    parser.reject_other_modes(argv, args.mode)
    with parser.errors_as_flags(config_aliases(args)):
        try:
            with cpu_threads(args.threads if args.threads is not None else default_threads()):
                return MODES[args.mode](args)
        except KeyboardInterrupt:
            raise Interrupted(INTERRUPTED[args.mode]) from None


if __name__ == "__main__":
    run_main(main)
