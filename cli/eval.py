"""--mode eval: the evaluation protocol's options, the EvalConfig they give, and the run itself (here, or submitted
to Slurm)."""
import argparse

from attacks import ATTACKS
from attacks.adaptive import ADAPTIVE
from attacks.base import LOSSES
from attacks.nes import MODES as NES_MODES
from attacks.nes import schedule_text
from cli import EVAL, ROOT
from cli.launcher import device_from_args, slurm_config_from_args, task_command
from cli.run_options import chosen_dataset
from cli.train import train_hint
from cli.variants import method_from_args, variants_from_args
from common.cli import fraction
from common.errors import UsageError
from common.io import ensure_writable_dir
from data.registry import DATASETS, dataset_folder, get_dataset
from evaluation.config import EvalConfig
from evaluation.config import QUICK as EVAL_QUICK
from evaluation.minimal import LIMIT_PER_EPS
from evaluation.minimal import NORMS as MINIMAL_NORMS
from evaluation.runner import evaluate_variants
from launch import SLURM
from launch.sweep import submit_evaluation
from training.recipe import Recipe


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
        audit_radii=none_or(args.audit_radii, "--audit-radii"),
        adaptive_attacks=none_or(args.adaptive_attacks, "--adaptive-attacks"),
        minimal_norms=none_or(args.minimal_norms, "--minimal-norms", "the measure"),
        **{field: getattr(args, field if field != "batch_size" else "eval_batch_size") for field in EVAL_FLAGS})


def none_or(values, flag, what="it"):
    """A list option that ``none`` (alone) turns ``what`` off: the values, () for ``none``, None where not given."""
    if values is None:
        return None
    if "none" in values and len(values) > 1:
        raise UsageError(f"{flag} none turns {what} off; give it alone")
    return () if values == ["none"] else tuple(values)


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
    default_recipe = Recipe.from_options(quick=args.quick, dataset=dataset)

    def hint(variant, force=False, recipe=None):
        return train_hint(variant, recipe or default_recipe, args.data_dir, args.models_dir, force)

    if args.launcher == SLURM:
        return submit_evaluation(variants, method, models_dir, results_dir, args.data_dir, device, config, hint, slurm,
                                 task_command(parser, args, device, dataset), ROOT, force=args.force, dataset=dataset)
    ensure_writable_dir(results_dir / method, "results_dir")
    evaluate_variants(variants, method, models_dir, results_dir, args.data_dir, device, config, hint,
                      force=args.force, dataset=dataset)
    return 0
