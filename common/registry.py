"""Looking a name up in a registry (data sets, models) as command lines and recipes do."""
from common.errors import ConfigError


def lookup(registry, name, field):
    """``registry[name]``, or the ConfigError on ``field`` that lists the registered names."""
    if name not in registry:
        raise ConfigError(field, f"must be one of {', '.join(registry)}, got {name!r}")
    return registry[name]
