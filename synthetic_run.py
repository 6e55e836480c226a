"""Synthetic experiment (Vardi, Yehudai & Shamir 2022): does L1 or dropout sparsity on the hidden layer of a
depth-2 ReLU network move the smallest l2 perturbation that flips its predictions?

Writes results/synthetic/{mode}.json, .png and .pdf (docs/synthetic.md) and prints a summary table."""
from dataclasses import fields
from pathlib import Path

from common.cli import ArgumentParser, run_main
from common.device import DEFAULT_THREADS, DEVICE_CHOICES, resolve_device
from synthetic.config import DEFAULT_STRENGTHS, MODES, PENALTIES, SyntheticConfig
from synthetic.experiment import run_and_write, summary_line
from synthetic.table import summary_table
from synthetic.trainer import OPTIMIZERS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# every SyntheticConfig field but the mode has a flag of its name
CONFIG_FLAGS = tuple(field.name for field in fields(SyntheticConfig) if field.name != "mode")


def build_parser():
    defaults = SyntheticConfig(mode="l1")
    parser = ArgumentParser(prog="synthetic_run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", required=True, choices=MODES, help="sparsity method on the hidden activations")
    parser.add_argument("--d", type=int, help=f"input dimension (data norm sqrt(d)); default {defaults.d}")
    parser.add_argument("--m", type=int, help=f"number of training points; default {defaults.m}")
    parser.add_argument("--width", type=int, help=f"hidden units; default {defaults.width}")
    parser.add_argument("--strengths", type=float, nargs="+",
                        help="L1 strengths (>= 0) or dropout p in [0, 1); default: " + "; ".join(
                            f"{mode}{f' --penalty {penalty}' if penalty else ''}: {' '.join(f'{s:g}' for s in values)}"
                            for (mode, penalty), values in DEFAULT_STRENGTHS.items()))
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="one run per seed and strength; a seed fixes data, initialisation and dropout masks; "
                             f"default {' '.join(map(str, defaults.seeds))}")
    parser.add_argument("--penalty", choices=tuple(PENALTIES),
                        help="--mode l1 only; " + "; ".join(f"{name}: {text}" for name, text in PENALTIES.items())
                             + "; default mean")
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS),
                        help="; ".join(f"{name}: {text}" for name, text in OPTIMIZERS.items()) + "; default ngd")
    parser.add_argument("--lr", type=float, help="learning rate; default 0.03 for ngd, 0.1 for gd")
    parser.add_argument("--steps", type=int,
                        help=f"cap on gradient steps per run; a run stopped by it counts as not converged; "
                             f"default {defaults.steps}")
    parser.add_argument("--loss-target", type=float,
                        help=f"every run trains until its data loss is below this (equal fit); "
                             f"default {defaults.loss_target:g}")
    parser.add_argument("--search-limit", type=float,
                        help=f"flip searches stop at this multiple of sqrt(d); default {defaults.search_limit:g}")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="output folder, files go to its synthetic/ (default results/, as main.py's)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"torch CPU threads (default {DEFAULT_THREADS}: on a small shared CPU more threads wait "
                             f"for busy cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    with parser.errors_as_flags():
        config = SyntheticConfig.from_options(args.mode, **{flag: getattr(args, flag) for flag in CONFIG_FLAGS})
        results, paths = run_and_write(config, args.results_dir, resolve_device(args.device),
                                       progress=not args.no_progress, threads=args.threads)
    print(summary_table(results))
    print(summary_line(results, paths))
    return 0


if __name__ == "__main__":
    run_main(main)
