"""Synthetic experiment (Vardi, Yehudai & Shamir 2022): does L1 or dropout sparsity on the hidden layer of a
depth-2 ReLU network move the smallest l2 perturbation that flips its predictions?

    python synthetic_run.py --mode l1
    python synthetic_run.py --mode dropout

Writes results/synthetic/{mode}.json, .png and .pdf and prints a summary table.
"""
import math
from pathlib import Path

from common.cli import ArgumentParser, run_main
from common.device import DEVICE_CHOICES, resolve_device
from common.errors import UsageError
from common.io import atomic_write_json, ensure_writable_dir
from sparsity.synthetic_train import DEFAULT_LR, MODES, OPTIMIZERS, run_experiment
from vis.synthetic import plot_synthetic, summary_table

DEFAULT_STRENGTHS = {
    "l1": [0.0, 1e-5, 2e-5, 4e-5, 6e-5, 8e-5, 1e-4],
    "dropout": [0.0, 0.1, 0.2, 0.5],
}


def build_parser():
    parser = ArgumentParser(prog="synthetic_run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", required=True, choices=MODES, help="sparsity method on the hidden activations")
    parser.add_argument("--d", type=int, default=200, help="input dimension (data norm sqrt(d))")
    parser.add_argument("--m", type=int, default=200, help="number of training points")
    parser.add_argument("--width", type=int, default=500, help="hidden units")
    parser.add_argument("--strengths", type=float, nargs="+", default=None,
                        help="L1 strengths (>= 0) or dropout p in [0, 1); default: "
                             + "; ".join(f"{mode}: {' '.join(f'{s:g}' for s in values)}"
                                         for mode, values in DEFAULT_STRENGTHS.items()))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="one run per seed and strength; the seed fixes data, initialisation and dropout masks")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate; default 0.03 for ngd (step lr / objective), 0.1 for gd (the original)")
    parser.add_argument("--steps", type=int, default=20000, help="maximum gradient steps per run")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="ngd",
                        help="ngd: normalised gradient descent, step lr/objective (default); gd: plain, step lr")
    parser.add_argument("--results-dir", default="results", help="output folder (files go to its synthetic/)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def validate(args):
    for flag in ("d", "m", "width"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be >= 1, got {getattr(args, flag)}; pass a positive integer")
    if args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}; pass a positive number of steps")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise UsageError(f"--lr must be a positive number, got {args.lr:g}")
    for strength in args.strengths:
        if not (strength >= 0 and math.isfinite(strength)):
            raise UsageError(f"strengths must be finite and >= 0, got {strength:g}; fix --strengths")
        if args.mode == "dropout" and not strength < 1:
            raise UsageError(f"dropout p must be in [0, 1), got {strength:g}; fix --strengths")
    if any(seed < 0 for seed in args.seeds):
        raise UsageError(f"seeds must be >= 0, got {' '.join(map(str, args.seeds))}; fix --seeds")
    for flag, values in (("--seeds", args.seeds), ("--strengths", args.strengths)):
        if len(set(values)) != len(values):
            raise UsageError(f"{flag} lists a value twice; give each value once")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.strengths is None:
        args.strengths = DEFAULT_STRENGTHS[args.mode]
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    validate(args)
    device = resolve_device(args.device)
    out_dir = ensure_writable_dir(Path(args.results_dir) / "synthetic", "--results-dir")

    config = {"mode": args.mode, "d": args.d, "m": args.m, "width": args.width, "strengths": args.strengths,
              "seeds": args.seeds, "lr": args.lr, "steps": args.steps, "optimizer": args.optimizer}
    results = run_experiment(config, device, progress=not args.no_progress)
    json_path = out_dir / f"{args.mode}.json"
    atomic_write_json(json_path, results)
    plot_synthetic(results, out_dir / f"{args.mode}.png", out_dir / f"{args.mode}.pdf")
    print(summary_table(results))
    print(f"wrote {json_path} and {args.mode}.png/.pdf next to it")
    return 0


if __name__ == "__main__":
    run_main(main)
