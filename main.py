"""Real-data experiment: python main.py --mode train|eval|vis [--dropout] [--layers conv1 conv2 ...].

Parses options and dispatches to the packages. Options shared by every mode
(which variants, where files live, device) are defined once; each mode adds
its own option group and a ``run_<mode>(args)`` handler registered in MODES.
"""
import argparse
import math
from pathlib import Path

from common.cli import ArgumentParser, run_main
from common.device import DEVICE_CHOICES, resolve_device
from common.errors import UsageError
from common.io import ensure_writable_dir
from data.cifar import validate_classes
from models.simple_cnn import LAYER_NAMES
from sparsity.recipe import AUGMENTATIONS, QUICK, Recipe
from sparsity.train import summarize, train_variants
from sparsity.variants import DEFAULT_STRENGTH, SWEEP_STRENGTHS, select_variants

ROOT = Path(__file__).resolve().parent
EXIT_DIVERGED = 1


# ---- options shared by every mode ------------------------------------------------------------

def add_variant_options(parser):
    group = parser.add_argument_group("variants (method, layer, strength, seed)")
    group.add_argument("--dropout", action="store_true", help="dropout sparsity instead of the default L1 penalty")
    group.add_argument("--layers", nargs="+", default=list(LAYER_NAMES), metavar="LAYER",
                       help=f"layers to regularise, space- or comma-separated (default: all of {' '.join(LAYER_NAMES)})")
    strengths = group.add_mutually_exclusive_group()
    strengths.add_argument("--strength", type=float,
                           help=f"one strength: L1 weight (default {DEFAULT_STRENGTH['l1']:g}) "
                                f"or dropout p (default {DEFAULT_STRENGTH['dropout']:g})")
    strengths.add_argument("--strengths", type=float, nargs="+", metavar="S", help="several strengths")
    strengths.add_argument("--sweep", action="store_true",
                           help=f"the original sweep: L1 {' '.join(f'{s:g}' for s in SWEEP_STRENGTHS['l1'])}; "
                                f"dropout {' '.join(f'{s:g}' for s in SWEEP_STRENGTHS['dropout'])}")
    seeds = group.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=0, help="seed of every variant (default 0)")
    seeds.add_argument("--seeds", type=int, nargs="+", metavar="SEED", help="several seeds")
    group.add_argument("--no-baseline", action="store_true", help="leave out the unregularised 'standard' baseline")


def add_run_options(parser):
    group = parser.add_argument_group("data, files and device")
    group.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="auto: cuda, then mps, then cpu")
    group.add_argument("--data-dir", type=Path, default=ROOT / "data", help="holds cifar-10-batches-py/ (default data/)")
    group.add_argument("--models-dir", type=Path, default=ROOT / "trained-models",
                       help="checkpoints (default trained-models/)")
    group.add_argument("--results-dir", type=Path, default=ROOT / "results", help="results (default results/)")
    group.add_argument("--classes", type=int, nargs="+", metavar="INDEX",
                       help="CIFAR-10 class indices to use, relabelled 0..k-1 in this order (default: all 10)")
    group.add_argument("--quick", action="store_true",
                       help=f"CPU-sized preset for a run end to end in minutes (training: {QUICK}); flags override it")


def variants_from_args(args):
    """The variants a command acts on, from --dropout/--layers/--strength(s)/--sweep/--seed(s)/--no-baseline."""
    method = "dropout" if args.dropout else "l1"
    if args.sweep:
        strengths = list(SWEEP_STRENGTHS[method])
    else:
        strengths = args.strengths or [args.strength if args.strength is not None else DEFAULT_STRENGTH[method]]
    infinite = [s for s in strengths if not math.isfinite(s)]
    if infinite:
        raise UsageError(f"strength {infinite[0]} is not a finite number; pass --strength with a finite value")
    layers = [layer for item in args.layers for layer in item.split(",") if layer]
    seeds = args.seeds if args.seeds is not None else [args.seed]
    return select_variants(method, layers, strengths, seeds, include_baseline=not args.no_baseline)


# ---- train -----------------------------------------------------------------------------------

def add_train_options(parser):
    group = parser.add_argument_group("training recipe (--mode train; defaults are the original repository's)")
    defaults = Recipe()
    group.add_argument("--epochs", type=int, help=f"default {defaults.epochs}")
    group.add_argument("--batch-size", type=int, help=f"default {defaults.batch_size}")
    group.add_argument("--lr", type=float, help=f"SGD learning rate, default {defaults.lr:g}")
    group.add_argument("--momentum", type=float, help=f"default {defaults.momentum:g}")
    group.add_argument("--weight-decay", type=float, help=f"default {defaults.weight_decay:g}")
    group.add_argument("--lr-step", type=int, help=f"StepLR step in epochs, default {defaults.lr_step}")
    group.add_argument("--lr-gamma", type=float, help=f"StepLR factor, default {defaults.lr_gamma:g}")
    group.add_argument("--augment", choices=AUGMENTATIONS,
                       help="standard: pad-4 crop + flip (default); original: flip, rotate 8 deg, resized crop")
    group.add_argument("--train-per-class", type=int, metavar="N", help="train on the first N images of each class")
    group.add_argument("--test-per-class", type=int, metavar="N", help="measure on the first N test images per class")
    group.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                       help="bf16 autocast (default: on for CUDA, off otherwise)")
    group.add_argument("--force", action="store_true", help="retrain variants that have a checkpoint")


def recipe_from_args(args, device):
    return Recipe.from_options(
        quick=args.quick, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, lr_step=args.lr_step, lr_gamma=args.lr_gamma, augment=args.augment,
        classes=validate_classes(args.classes) if args.classes is not None else None,
        train_per_class=args.train_per_class, test_per_class=args.test_per_class,
        amp=args.amp if args.amp is not None else device.type == "cuda",
    )


def run_train(args):
    device = resolve_device(args.device)
    recipe = recipe_from_args(args, device)
    variants = variants_from_args(args)
    for folder in sorted({variant.checkpoint_path(args.models_dir).parent for variant in variants}):
        ensure_writable_dir(folder, "--models-dir")
    outcomes = train_variants(variants, recipe, args.data_dir, args.models_dir, device, force=args.force)
    print(summarize(outcomes, args.models_dir))
    return EXIT_DIVERGED if any(o.metadata["status"] == "diverged" for o in outcomes) else 0


# ---- dispatch --------------------------------------------------------------------------------

MODES = {"train": (add_train_options, run_train)}


def build_parser():
    parser = ArgumentParser(prog="main.py", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", required=True, choices=list(MODES))
    add_variant_options(parser)
    add_run_options(parser)
    for add_options, _ in MODES.values():
        add_options(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    _, run = MODES[args.mode]
    return run(args)


if __name__ == "__main__":
    run_main(main)
