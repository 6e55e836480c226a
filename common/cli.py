"""Command-line plumbing: one-line errors with exit status 2 instead of tracebacks.

The entry points parse with ``ArgumentParser`` and run their work inside
``parser.errors_as_flags()``: the library's plain exceptions (``ConfigError``,
``FileProblem``) become a ``UsageError`` that names the flag to change, and
``run_main`` prints it as one stderr line and exits with status 2.
"""
import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path

from common.errors import ConfigError, FileProblem, ProjectError, UsageError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Interrupted(Exception):
    """Ctrl-C, with what the interrupted command keeps and how to go on."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage, maps settings back to flags, and knows
    which options apply to which ``--mode`` (``add_mode_options``)."""

    def __init__(self, *args, help_mode=None, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self.option_modes = {}  # option string -> the modes it applies to
        # A parser built to show one mode's --help holds only the options that mode takes; None: every option.
        self.help_mode = help_mode

    def add_mode_options(self, group, modes, *flags, **kwargs):
        """``group.add_argument(*flags, **kwargs)`` for an option that only ``modes`` use (left out of a parser
        built for another mode's --help)."""
        if self.help_mode is not None and self.help_mode not in modes:
            return None
        action = group.add_argument(*flags, **kwargs)
        for flag in action.option_strings:
            self.option_modes[flag] = tuple(modes)
        return action

    def reject_other_modes(self, argv, mode):
        """A UsageError for the first option in ``argv`` that does not apply to ``mode``."""
        for token in argv:
            flag = token.split("=", 1)[0]
            modes = self.option_modes.get(flag)
            if modes is not None and mode not in modes:
                raise UsageError(f"{flag} applies to --mode {' and '.join(modes)}, not --mode {mode}; "
                                 f"leave it out (see {self.prog} --help)")

    def format_help(self):
        # argparse cannot draw an empty mutually exclusive group, which a mode's --help leaves where every option
        # of the group belongs to other modes
        groups, self._mutually_exclusive_groups = self._mutually_exclusive_groups, [
            group for group in self._mutually_exclusive_groups if group._group_actions]
        try:
            return super().format_help()
        finally:
            self._mutually_exclusive_groups = groups

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")

    def command_line(self, args, leave_out=()):
        """The options that parse back to ``args`` (those that differ from their defaults), except the dests in
        ``leave_out``: how a command hands its own settings to another process. Paths become absolute, floats
        are written exactly (``repr``)."""
        def text(value):
            if isinstance(value, Path):
                return os.path.abspath(value)
            return repr(value) if isinstance(value, float) else str(value)

        argv = []
        for action in self._actions:
            if not action.option_strings or action.dest in leave_out or not hasattr(args, action.dest):
                continue
            value = getattr(args, action.dest)
            if value == action.default:
                continue
            flag = max(action.option_strings, key=len)
            if isinstance(action, argparse.BooleanOptionalAction):  # option_strings: --amp, --no-amp
                argv.append(action.option_strings[0 if value else 1])
            elif action.nargs == 0:
                argv.append(flag)
            elif isinstance(value, (list, tuple)):
                argv += [flag, *map(text, value)]
            else:
                argv += [flag, text(value)]
        return argv

    def flag(self, field):
        """The option that sets ``field`` (an argparse dest or a config attribute of the same name)."""
        for action in self._actions:
            if action.dest == field and action.option_strings:
                return max(action.option_strings, key=len)
        return None

    @contextlib.contextmanager
    def errors_as_flags(self, aliases=None):
        """Turn the library's ConfigError/FileProblem into UsageErrors that speak in this parser's flags.

        ``aliases`` maps a config field to its flag where the names differ (e.g. ``{"batch_size": "--eval-batch-size"}``).
        """
        aliases = aliases or {}
        try:
            yield
        except ConfigError as err:
            flag = aliases.get(err.field) or self.flag(err.field)
            raise UsageError(f"{flag} {err.problem}" if flag else str(err)) from None
        except FileProblem as err:
            message = str(err)
            overwrite = aliases.get(err.overwrite) or (self.flag(err.overwrite) if err.overwrite else None)
            if overwrite:
                message += f"; or pass {overwrite} to replace it"
            place = aliases.get(err.location) or (self.flag(err.location) if err.location else None)
            if place:
                message += f"; or choose another place with {place}"
            raise UsageError(message) from None


@contextlib.contextmanager
def one_line_warnings():
    """Python warnings (a failed sanity check, a skipped file) print as one ``warning: ...`` line on stderr,
    without the file, line and source line Python adds; the previous handling is restored afterwards."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def run_main(main, argv=None):
    """Run ``main(argv)``; a ProjectError becomes one stderr line and exit status 2, Ctrl-C exit 130; warnings
    print as one line each."""
    try:
        with one_line_warnings():
            status = main(argv)
    except ProjectError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except Interrupted as note:
        print(f"interrupted: {note}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status or 0)


def fraction(text):
    """argparse type: a float, also written as a fraction such as 8/255."""
    numerator, _, denominator = text.partition("/")
    try:
        return float(numerator) / float(denominator) if denominator else float(numerator)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or a fraction such as 8/255")
