"""The Slurm launcher's settings: the resources each task asks for, and whether to wait for the array."""
import shlex
from dataclasses import dataclass, fields

import torch

from common import validation
from common.errors import ConfigError
from launch import SLURM

# sbatch options the launcher sets itself: one array, its logs, its dependencies, its job id on stdout
RESERVED_LONG = ("--array", "--output", "--error", "--open-mode", "--parsable", "--dependency", "--wrap", "--job-name")
RESERVED_SHORT = ("-a", "-o", "-e", "-d", "-J")


@dataclass(frozen=True)
class SlurmConfig:
    """Per-task resources (None: the cluster's default) and extra sbatch options, e.g. ``("--account=lab",)``."""

    partition: str | None = None
    time: str | None = None  # sbatch's format: minutes, [D-]HH:MM:SS, ...
    cpus_per_task: int | None = None
    mem: str | None = None  # sbatch's format: 16G, 4000M, ...
    gpus_per_task: int | None = None
    max_running: int | None = None  # at most this many tasks at once (--array=...%N)
    sbatch_args: tuple = ()
    wait: bool = False

    @classmethod
    def from_options(cls, launcher, sbatch_args=None, **options):
        """The config of a command line whose settings are None where not given; a setting given without
        ``launcher == "slurm"`` is an error. ``sbatch_args`` is one string of shell words."""
        given = {key: value for key, value in options.items() if value is not None and value is not False}
        if sbatch_args is not None:
            given["sbatch_args"] = sbatch_args
        if launcher != SLURM and given:
            raise ConfigError(next(iter(given)), f"applies to --launcher {SLURM} only; add --launcher {SLURM} or "
                                                 f"leave it out")
        if "sbatch_args" in given:
            try:
                given["sbatch_args"] = tuple(shlex.split(sbatch_args))
            except ValueError as err:
                raise ConfigError("sbatch_args", f"is not a list of shell words ({err})") from None
        config = cls(**given)
        config.validate()
        return config

    def validate(self):
        for field in ("cpus_per_task", "gpus_per_task", "max_running"):
            if getattr(self, field) is not None:
                validation.integer(getattr(self, field), field, minimum=1)
        for field in ("partition", "time", "mem"):
            value = getattr(self, field)
            if value is not None and (not value or any(c.isspace() for c in value)):
                raise ConfigError(field, f"must be one word, not {value!r}")
        for arg in self.sbatch_args:
            option = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
            if option in RESERVED_LONG + RESERVED_SHORT:
                raise ConfigError("sbatch_args", f"must not set {option}: the launcher sets it (one array task "
                                                 f"per variant, logs beside the results)")

    def task_device(self, device):
        """The torch.device a task runs on (``device``: the --device choice), fixed at submission so that the
        skip rules checked here hold there: ``auto`` becomes cuda when the task asks for GPUs, cpu otherwise."""
        if device == "auto":
            device = "cuda" if self.gpus_per_task else "cpu"
        return torch.device(device)

    def sbatch_options(self):
        """The resource options for sbatch, then the extra ones (which sbatch lets override the others)."""
        flags = {"partition": "--partition", "time": "--time", "cpus_per_task": "--cpus-per-task", "mem": "--mem",
                 "gpus_per_task": "--gpus-per-task"}
        options = [f"{flag}={getattr(self, field)}" for field, flag in flags.items()
                   if getattr(self, field) is not None]
        return options + list(self.sbatch_args)


FIELDS = tuple(field.name for field in fields(SlurmConfig))
