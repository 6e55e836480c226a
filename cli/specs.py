"""Which models a command acts on: the options that select them (method, layers, strengths, seeds, the baseline,
adversarial training) and the ``ModelSpec``s they give."""
from cli import EVAL, TRAIN
from common import validation
from common.cli import fraction
from common.errors import ConfigError, UsageError
from models import DEFAULT_MODEL, all_layer_names, layer_names
from models.spec import ModelSpec
from sparsity.methods import DEFAULT_METHOD, METHODS
from training.adversarial import ADV_TRAININGS, validate_adversarial


def add_spec_options(parser):
    group = parser.add_argument_group("models: how they are made (method, adversarial training)")
    method = group.add_mutually_exclusive_group()
    method.add_argument("--method", choices=list(METHODS), default=None,
                        help=f"sparsity method (default {DEFAULT_METHOD})")
    method.add_argument("--dropout", action="store_true", help="same as --method dropout (the original spelling)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--adv-train", choices=ADV_TRAININGS, default=None,
                            help="adversarial training of every selected model, part of its identity and file "
                                 "names: pgd (Madry et al. 2018) or fgsm-rs (FGSM from a random start, Wong et al. "
                                 "2020); needs --adv-eps (default: standard training)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--adv-eps", type=fraction, default=None, metavar="EPS",
                            help="L-inf budget of --adv-train, in (0, 1], e.g. 0.1 or 8/255")
    group = parser.add_argument_group("models: which ones (layer, strength, seed, the baseline)")
    group.add_argument("--layers", nargs="+", default=None, metavar="LAYER",
                       help=f"layers to regularise, space- or comma-separated (default: every layer of the model; "
                            f"{DEFAULT_MODEL}: {' '.join(layer_names())})")
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
                            help="seed of every model: initialisation, data order, dropout, and in eval its attacks, "
                                 "targets and query subset (default 0)")
    parser.add_mode_options(seeds, (TRAIN, EVAL), "--seeds", type=int, nargs="+", metavar="SEED",
                            help="several seeds")
    baseline = group.add_mutually_exclusive_group()
    baseline.add_argument("--no-baseline", action="store_true", help="leave out the unregularised 'standard' baseline")
    parser.add_mode_options(baseline, (TRAIN, EVAL), "--baseline-only", action="store_true",
                            help="only the 'standard' baseline")


def selection_aliases(args):
    """The flag given for the settings whose flag has two spellings (--strength or --strengths, --seed or --seeds),
    for errors."""
    return {"strengths": "--strength" if args.strength is not None else "--strengths",
            "seeds": "--seed" if args.seeds is None else "--seeds"}


def method_from_args(args):
    return "dropout" if args.dropout else args.method or DEFAULT_METHOD


def validate_layers(layers, model=None, field="layers"):
    """The layers as a tuple: known to ``model`` (None: to any registered model), each listed once, at least one."""
    known = all_layer_names() if model is None else layer_names(model)
    layers = tuple(layers)
    if not layers:
        raise ConfigError(field, f"lists no layer; valid layers: {' '.join(known)}")
    unknown = [layer for layer in layers if layer not in known]
    if unknown:
        raise ConfigError(field, f"has unknown layer {unknown[0]!r}; valid layers: {' '.join(known)}")
    return validation.distinct(layers, field)


def layers_from_args(args, model=DEFAULT_MODEL):
    """--layers accepts ``conv1 conv2``, ``conv1,conv2`` and the seed README's ``[conv1,conv2]``; default: every
    layer of the model."""
    if args.layers is None:
        return list(layer_names(model))
    return [layer for item in args.layers for layer in item.strip("[]").split(",") if layer]


def specs_from_args(args, dataset, model=DEFAULT_MODEL):
    """The models a command acts on, baselines first: every (layer, strength, seed) of the method, with the
    adversarial training given (None: standard training)."""
    method = METHODS[method_from_args(args)]
    if args.sweep:
        strengths = list(method.sweep)
    else:
        strengths = args.strengths or [args.strength if args.strength is not None else method.default_strength]
    if args.adv_eps is not None and args.adv_train is None:
        raise UsageError(f"--adv-eps is the budget of adversarial training; add --adv-train "
                         f"{' or '.join(ADV_TRAININGS)}, or leave --adv-eps out")
    validate_adversarial(args.adv_train, args.adv_eps)
    adv_eps = None if args.adv_train is None else float(args.adv_eps)
    layers = validate_layers(layers_from_args(args, model), model)
    strengths = validation.distinct([method.validate_strength(s, "strengths") for s in strengths], "strengths")
    seeds = validation.seeds(args.seeds if args.seeds is not None else [args.seed])
    baselines = [] if args.no_baseline else [ModelSpec.baseline_of(seed, args.adv_train, adv_eps, dataset=dataset,
                                                                   model=model) for seed in seeds]
    if args.baseline_only:
        return baselines
    return baselines + [ModelSpec(method.name, layer, strength, seed, args.adv_train, adv_eps, dataset=dataset,
                                  model=model) for seed in seeds for layer in layers for strength in strengths]
