"""Command-line plumbing: one-line errors with exit status 2 instead of tracebacks."""
import argparse
import sys

from common.errors import UsageError

EXIT_USAGE = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage plus an error."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def run_main(main, argv=None):
    """Run ``main(argv)``; a UsageError becomes one stderr line and exit status 2."""
    try:
        status = main(argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted: completed epochs are checkpointed; rerun the same command to resume",
              file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
