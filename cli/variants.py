"""Which variants a command acts on: the options that select them (method, layers, strengths, seeds, the baseline,
adversarial training) and the variants, method and layers those options give."""
from cli import EVAL, TRAIN
from common.cli import fraction
from common.errors import UsageError
from models import DEFAULT_MODEL, layer_names
from sparsity.methods import DEFAULT_METHOD, METHODS
from sparsity.variants import select_variants
from training.adversarial import ADV_TRAININGS


# The options that pick variants one by one (layers, strengths, seeds, the baseline), in their own group: a Slurm
# task's command replaces them with its variant's selection (cli.launcher.task_command).
SELECTION = "variants: which ones (layer, strength, seed, the baseline)"


def add_variant_options(parser):
    group = parser.add_argument_group("variants: how they are made (method, adversarial training)")
    method = group.add_mutually_exclusive_group()
    method.add_argument("--method", choices=list(METHODS), default=None,
                        help=f"sparsity method (default {DEFAULT_METHOD})")
    method.add_argument("--dropout", action="store_true", help="same as --method dropout (the original spelling)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--adv-train", choices=ADV_TRAININGS, default=None,
                            help="adversarial training of every selected variant, part of its identity and file "
                                 "names: pgd (Madry et al. 2018) or fgsm-rs (FGSM from a random start, Wong et al. "
                                 "2020); needs --adv-eps (default: standard training)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--adv-eps", type=fraction, default=None, metavar="EPS",
                            help="L-inf budget of --adv-train, in (0, 1], e.g. 0.1 or 8/255")
    group = parser.add_argument_group(SELECTION)
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


def selection_dests(parser):
    """The dests of the options that pick variants one by one (the SELECTION group's)."""
    return {action.dest for group in parser._action_groups if group.title == SELECTION
            for action in group._group_actions}


def selection_aliases(args):
    """The flag given for the settings whose flag has two spellings (--strength or --strengths, --seed or --seeds),
    for errors."""
    return {"strengths": "--strength" if args.strength is not None else "--strengths",
            "seeds": "--seed" if args.seeds is None else "--seeds"}


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
