"""Command-line plumbing: one-line errors with exit status 2 naming the flag to change, instead of tracebacks.

A configuration dataclass declares its command line with its fields (``option``); an option's key is the field's
name, or ``owner_name`` for a part's settings (an attack's), and its flag the key with dashes.
"""
import argparse
import contextlib
import dataclasses
import sys
import warnings

from common.errors import ConfigError, FileProblem, ProjectError, UsageError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Interrupted(Exception):
    """Ctrl-C, with what the interrupted command keeps and how to go on."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError, maps settings back to flags, and knows which options each ``--mode`` takes."""

    def __init__(self, *args, help_mode=None, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self.option_modes = {}  # option string -> the modes it applies to
        # A parser built to show one mode's --help holds only the options that mode takes; None: every option.
        self.help_mode = help_mode

    def add_mode_options(self, group, modes, *flags, **kwargs):
        """``group.add_argument`` for an option that only ``modes`` use (left out of another mode's --help)."""
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
                same = self.flag(self._option_string_actions[flag].dest, mode)  # this mode's option of that setting
                instead = f"use {same}" if same and same != flag else "leave it out"
                raise UsageError(f"{flag} applies to --mode {' and '.join(modes)}, not --mode {mode}; "
                                 f"{instead} (see {self.prog} --help)")

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

    def flag(self, field, mode=None):
        """The option that sets ``field`` (an argparse dest); where several modes' options share it, ``mode``'s."""
        for action in (action for action in self._actions if action.dest == field and action.option_strings):
            if mode is None or mode in self.option_modes.get(action.option_strings[0], (mode,)):
                return max(action.option_strings, key=len)
        return None

    @contextlib.contextmanager
    def errors_as_flags(self, aliases=None, mode=None):
        """The library's ConfigError/FileProblem as UsageErrors naming ``mode``'s flags (``aliases``: field -> flag
        where the option has another dest)."""
        aliases = aliases or {}

        def flag(field):
            return (aliases.get(field) or self.flag(field, mode)) if field else None

        try:
            yield
        except ConfigError as err:
            name = flag(err.field)
            raise UsageError(f"{name} {err.problem}" if name else str(err)) from None
        except FileProblem as err:
            message = str(err)
            if flag(err.overwrite):
                message += f"; or pass {flag(err.overwrite)} to replace it"
            if flag(err.location):
                message += f"; or choose another place with {flag(err.location)}"
            raise UsageError(message) from None


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def run_main(main, argv=None):
    """Run ``main(argv)``; a ProjectError becomes one stderr line and exit status 2, Ctrl-C exit 130; a warning
    prints as one ``warning: ...`` line, without Python's file and source line."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
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


def at_least_one(text):
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer of at least 1")
    return value

# ---- configuration fields and their options ---------------------------------------------------------------------

CLI = "cli"  # the metadata key of a field's option


def option(default, help, *, flag=None, aliases=(), key=None, type=None, nargs=None, choices=None, metavar=None,
           convert=None, none=None, write=None, command_line=True):
    """A dataclass field with ``default`` and its command-line option. ``help`` (``{default}``: the default as
    written) and ``choices`` may be callables, read when the parser is built (registries); ``convert``: the parsed
    value to the field's; ``none``: what the word ``none`` alone turns off (the value ``()``); ``write``: the value
    as the words that give it back; ``command_line`` False: a field no option sets."""
    spec = {"help": help, "flag": flag, "aliases": tuple(aliases), "key": key, "type": type, "nargs": nargs,
            "choices": choices, "metavar": metavar, "convert": convert, "none": none, "write": write,
            "command_line": command_line}
    return dataclasses.field(default=default, metadata={CLI: spec})


@dataclasses.dataclass(frozen=True)
class Option:
    """One configuration field's option: its key (the argparse dest), flag, the field and its declaration."""

    key: str
    flag: str
    field: object
    spec: dict
    owner: str | None = None

    @property
    def name(self):
        return self.field.name

    def words(self, value):
        """``value`` as the words after the flag that parse back to it."""
        if self.spec["write"] is not None:
            return list(self.spec["write"](value))
        if isinstance(value, (tuple, list)):
            return ["none"] if not value and self.spec["none"] else [word for item in value for word in
                                                                     self.words(item)]
        return [repr(value) if isinstance(value, float) else str(value)]


def config_options(cls, owner=None):
    """The Options of a configuration dataclass's fields (``owner``: the part whose settings they are)."""
    found = []
    for field in dataclasses.fields(cls):
        spec = field.metadata.get(CLI)
        if spec is None or not spec["command_line"]:
            continue
        key = spec["key"] or (f"{owner}_{field.name}" if owner else field.name)
        found.append(Option(key, spec["flag"] or "--" + key.replace("_", "-"), field, spec, owner))
    return found


def _argparse_type(option):
    """The spec's type, else the field's int or float (optional or not), else None: the word itself."""
    kind = option.field.type
    return option.spec["type"] or next((simple for simple in (int, float) if kind in (simple, simple | None)), None)


def add_config_options(parser, group, modes, options, defaults):
    """One option per Option; ``defaults(option)``: the default its help states (the option's own is None)."""
    for option in options:
        spec = option.spec
        text = spec["help"]() if callable(spec["help"]) else spec["help"]
        if "{default}" in text:
            text = text.format(default=" ".join(option.words(defaults(option))))
        choices = spec["choices"]() if callable(spec["choices"]) else spec["choices"]
        kwargs = {"dest": option.key, "help": text, "default": None}
        if option.field.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=_argparse_type(option), nargs=spec["nargs"], metavar=spec["metavar"],
                          choices=None if choices is None else [*choices, *(["none"] if spec["none"] else [])])
        parser.add_mode_options(group, modes, option.flag, *spec["aliases"], **kwargs)


def given_options(args, options):
    """``{key: value}`` of the Options given on the command line ``args`` parsed, as the fields take them."""
    given = {}
    for option in options:
        value = getattr(args, option.key, None)
        if value is None:
            continue
        if option.spec["none"] and isinstance(value, list) and "none" in value:
            if len(value) > 1:
                raise UsageError(f"{option.flag} none turns {option.spec['none']} off; give it alone")
            value = []
        value = tuple(value) if isinstance(value, list) else value
        given[option.key] = option.spec["convert"](value) if option.spec["convert"] and value != () else value
    return given


def command_flags(options, values, base):
    """The flags that turn the configuration ``base`` into ``values`` (both ``{key: value}``)."""
    flags = []
    for option in options:
        value = values[option.key]
        if value == base[option.key] or value is None:
            continue
        if option.field.type is bool:
            flags.append(option.flag if value else "--no-" + option.flag[2:])
        else:
            flags += [option.flag, *option.words(value)]
    return flags
