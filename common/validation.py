"""Checks shared by every configuration and command line: each returns the value it accepts (converted where that
is lossless) and raises ``ConfigError(field, problem)`` otherwise."""
import math
import numbers

from common.errors import ConfigError

SEED_LIMIT = 2 ** 32  # numpy's and CUDA's generators take seeds below this


def integer(value, field, minimum=None, maximum=None):
    """An int (not a bool) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(field, f"must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(field, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(field, f"must be at most {maximum}, got {value}")
    return value


def number(value, field, minimum=None, maximum=None, above=None, below=None):
    """A finite real number; ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive ones."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(field, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(field, f"must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ConfigError(field, f"must be >= {minimum:g}, got {value:g}")
    if above is not None and value <= above:
        raise ConfigError(field, f"must be > {above:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ConfigError(field, f"must be <= {maximum:g}, got {value:g}")
    if below is not None and value >= below:
        raise ConfigError(field, f"must be < {below:g}, got {value:g}")
    return value


def seed(value, field="seed"):
    """A seed every generator of the project accepts: an integer in [0, 2^32)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < SEED_LIMIT:
        raise ConfigError(field, f"must be an integer in [0, 2^32), got {value!r}")
    return int(value)


def distinct(values, field):
    """A non-empty sequence without repeats, returned as a tuple."""
    values = tuple(values)
    if not values:
        raise ConfigError(field, "must list at least one value")
    repeated = sorted({repr(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ConfigError(field, f"lists {', '.join(repeated)} more than once; give each value once")
    return values


def seeds(values, field="seeds"):
    return distinct([seed(value, field) for value in values], field)


def choice(value, field, choices):
    if value not in choices:
        raise ConfigError(field, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value
