"""Real-data experiment: python main.py --mode train|eval|vis [--dropout] [--layers conv1 conv2 ...].

Builds the parser from cli/ and dispatches to the mode's runner."""
import sys

from cli import EVAL, TRAIN, VIS
from cli.eval import add_eval_options, run_eval
from cli.launcher import add_launcher_options
from cli.run_options import add_run_options
from cli.train import add_train_options, run_train
from cli.specs import add_spec_options, selection_aliases
from cli.vis import run_vis
from common.cli import ArgumentParser, Interrupted, run_main
from common.device import cpu_threads, default_threads

INTERRUPTED = {
    TRAIN: "completed epochs are checkpointed; rerun the same command to resume",
    EVAL: "finished models' records are saved; rerun the same command to evaluate the rest",
    VIS: "no figure was left half-written; rerun the command",
}
# mode -> its runner, run(args, parser)
MODES = {TRAIN: run_train, EVAL: run_eval, VIS: run_vis}


def build_parser(help_mode=None):
    """The command line; ``help_mode``: a parser holding only that mode's options, for its --help."""
    epilog = ("Only the options of --mode {0} are listed; python main.py --help lists every mode's."
              if help_mode else "python main.py --mode MODE --help lists only that mode's options.")
    parser = ArgumentParser(prog="main.py", description=__doc__.splitlines()[0], help_mode=help_mode,
                            epilog=epilog.format(help_mode) + " Layout and data flow: docs/DESIGN.md.")
    parser.add_argument("--mode", required=True, choices=list(MODES))
    add_spec_options(parser)
    add_run_options(parser)
    add_train_options(parser)
    add_eval_options(parser)
    add_launcher_options(parser)
    return parser


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
    with parser.errors_as_flags(selection_aliases(args), mode=args.mode):
        try:
            with cpu_threads(args.threads if args.threads is not None else default_threads()):
                return MODES[args.mode](args, parser)
        except KeyboardInterrupt:
            raise Interrupted(INTERRUPTED[args.mode]) from None


if __name__ == "__main__":
    run_main(main)
