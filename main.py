"""Real-data experiment: python main.py --mode train|eval|vis [--dropout] [--layers conv1 conv2 ...].

Parses options and dispatches to the packages. Options shared by every mode
(which variants, where files live, device) are defined once; each mode adds
its own option group and a ``run_<mode>(args)`` handler registered in MODES.
"""
import argparse
from pathlib import Path

from attacks.evaluate import NES_MODES, EvalConfig
from attacks.run_eval import evaluate_variants
from common.cli import ArgumentParser, run_main
from common.device import DEVICE_CHOICES, resolve_device
from common.errors import UsageError
from common.io import ensure_writable_dir
from data.cifar import validate_classes
from models.simple_cnn import LAYER_NAMES
from sparsity.recipe import AUGMENTATIONS, QUICK, Recipe
from sparsity.train import summarize, train_variants
from sparsity.variants import DEFAULT_STRENGTH, SWEEP_STRENGTHS, Variant, select_variants, validate_layers
from vis.report import make_figures

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
    baseline = group.add_mutually_exclusive_group()
    baseline.add_argument("--no-baseline", action="store_true", help="leave out the unregularised 'standard' baseline")
    baseline.add_argument("--baseline-only", action="store_true",
                          help="only the 'standard' baseline (e.g. one job of a job array)")


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
    seeds = args.seeds if args.seeds is not None else [args.seed]
    if args.baseline_only:
        return [Variant.baseline(seed) for seed in seeds]
    return select_variants(method, layers_from_args(args), strengths, seeds, include_baseline=not args.no_baseline)


def layers_from_args(args):
    """--layers accepts ``conv1 conv2``, ``conv1,conv2`` and the seed README's ``[conv1,conv2]``."""
    return [layer for item in args.layers for layer in item.strip("[]").split(",") if layer]


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


# ---- eval ------------------------------------------------------------------------------------

# --quick for eval: few samples and short attacks, so the pipeline runs end to end on a CPU in minutes.
EVAL_QUICK = {"n_eval": 200, "steps": 20, "nes_n": 10, "nes_samples": 20, "nes_steps": 20, "check_n": 100}
ATTACK_CHOICES = ("pgd", "nes")


def fraction(text):
    """A float, also written as a fraction such as 8/255."""
    numerator, _, denominator = text.partition("/")
    try:
        value = float(numerator) / float(denominator) if denominator else float(numerator)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or a fraction such as 8/255")
    return value


def add_eval_options(parser):
    group = parser.add_argument_group("evaluation (--mode eval; defaults follow DESIGN.md)")
    defaults = EvalConfig()
    group.add_argument("--attacks", nargs="+", choices=ATTACK_CHOICES, default=list(ATTACK_CHOICES),
                       help="attacks to run (default: pgd nes)")
    group.add_argument("--eps", type=fraction, default=defaults.eps, help="L-inf budget of PGD and NES (default 8/255)")
    group.add_argument("--alpha", type=fraction, default=defaults.alpha, help="step size of PGD and NES (default 1/255)")
    group.add_argument("--steps", type=int, help=f"PGD steps (default {defaults.steps})")
    group.add_argument("--restarts", type=int, default=defaults.restarts, help="PGD random restarts (default 1)")
    group.add_argument("--n-eval", type=int, help="attack the first N test images with PGD (default: all)")
    group.add_argument("--nes-n", type=int, help=f"NES on a seeded subset of N of them (default {defaults.nes_n})")
    group.add_argument("--nes-steps", type=int, help=f"NES iterations (default {defaults.nes_steps})")
    group.add_argument("--nes-samples", type=int,
                       help=f"antithetic pairs per gradient estimate (default {defaults.nes_samples})")
    group.add_argument("--nes-sigma", type=fraction, default=defaults.nes_sigma,
                       help="NES sampling scale (default 1/255)")
    group.add_argument("--nes-momenta", type=float, nargs="+", default=list(defaults.nes_momenta),
                       help="NES momentum values (default 0 0.9)")
    group.add_argument("--nes-modes", nargs="+", choices=NES_MODES, default=list(NES_MODES),
                       help="untargeted and/or targeted NES (default both)")
    group.add_argument("--query-batch", type=int, help="images per NES forward (default 4096 on CUDA, 64 otherwise)")
    group.add_argument("--eval-batch-size", type=int, default=defaults.batch_size,
                       help=f"images per PGD batch (default {defaults.batch_size})")
    group.add_argument("--check-n", type=int, help=f"samples for the sanity checks (default {defaults.check_n})")


def eval_config_from_args(args):
    quick = EVAL_QUICK if args.quick else {}
    given = {"steps": args.steps, "n_eval": args.n_eval, "nes_n": args.nes_n, "nes_steps": args.nes_steps,
             "nes_samples": args.nes_samples, "check_n": args.check_n}
    knobs = {**quick, **{key: value for key, value in given.items() if value is not None}}
    config = EvalConfig(eps=args.eps, alpha=args.alpha, restarts=args.restarts, nes_eps=args.eps,
                        nes_alpha=args.alpha, nes_sigma=args.nes_sigma, nes_momenta=tuple(args.nes_momenta),
                        nes_modes=tuple(dict.fromkeys(args.nes_modes)), query_batch=args.query_batch,
                        batch_size=args.eval_batch_size, seed=args.seed, **knobs)
    checks = [
        (config.eps >= 0, f"--eps must be >= 0, got {config.eps:g}"),
        (config.alpha > 0, f"--alpha must be positive, got {config.alpha:g}"),
        (config.steps >= 1, f"--steps must be at least 1, got {config.steps}"),
        (config.restarts >= 1, f"--restarts must be at least 1, got {config.restarts}"),
        (config.n_eval is None or config.n_eval >= 1, f"--n-eval must be at least 1, got {config.n_eval}"),
        (config.nes_n >= 1, f"--nes-n must be at least 1, got {config.nes_n}"),
        (config.nes_steps >= 1, f"--nes-steps must be at least 1, got {config.nes_steps}"),
        (config.nes_samples >= 1, f"--nes-samples must be at least 1, got {config.nes_samples}"),
        (config.nes_sigma > 0, f"--nes-sigma must be positive, got {config.nes_sigma:g}"),
        (all(0 <= m < 1 for m in config.nes_momenta), "--nes-momenta values must be in [0, 1)"),
        (config.query_batch is None or config.query_batch >= 2, "--query-batch must be at least 2"),
        (config.batch_size >= 1, "--eval-batch-size must be at least 1"),
        (config.check_n >= 0, "--check-n must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(f"{message}; pass a valid value")
    return config


def run_eval(args):
    device = resolve_device(args.device)
    config = eval_config_from_args(args)
    variants = variants_from_args(args)
    method = "dropout" if args.dropout else "l1"
    ensure_writable_dir(args.results_dir / method, "--results-dir")
    evaluate_variants(variants, method, args.models_dir, args.results_dir, args.data_dir, device, config,
                      tuple(dict.fromkeys(args.attacks)), quick=args.quick)
    return 0


# ---- vis -------------------------------------------------------------------------------------

def add_vis_options(parser):
    """vis reads what eval wrote: it needs only the shared options (--dropout, --layers, --results-dir, ...)."""


def run_vis(args):
    method = "dropout" if args.dropout else "l1"
    layers = layers_from_args(args)
    validate_layers(layers)
    written = make_figures(args.results_dir, method, layers, include_baseline=not args.no_baseline)
    print(f"vis: wrote {len(written)} files to {args.results_dir / method}: "
          + ", ".join(sorted({path.stem for path in written})))
    return 0


# ---- dispatch --------------------------------------------------------------------------------

MODES = {
    "train": (add_train_options, run_train),
    "eval": (add_eval_options, run_eval),
    "vis": (add_vis_options, run_vis),
}


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
