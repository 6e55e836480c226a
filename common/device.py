"""Device choice, CPU threads, and what the CPU reports (training's precision is measured: training.precision)."""
import os
from contextlib import contextmanager
from pathlib import Path

import torch

from common import validation
from common.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_THREADS = 1  # synthetic_run.py's: its batched runs are small
# CPU flags of native bf16 arithmetic (AVX-512 BF16, AMX); without them oneDNN emulates bf16, slower than fp32.
# Reported by the benchmarks, never used to choose: with them bf16 still ran slower than fp32 on one Xeon (issue 25)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_device(name):
    """Map --device to a torch.device; auto prefers cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "is cuda, but CUDA is not available; use auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device", "is mps, but MPS is not available; use auto or cpu")
    if name not in DEVICE_CHOICES:
        raise ConfigError("device", f"must be one of {', '.join(DEVICE_CHOICES)}, got {name!r}")
    return torch.device(name)


def default_threads():
    """main.py's threads without --threads: ``OMP_NUM_THREADS`` or ``SLURM_CPUS_PER_TASK`` where set, else the
    cores this process may use."""
    for name in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        given = os.environ.get(name, "")
        if given.isdigit() and int(given) > 0:
            return int(given)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def cpu_threads(threads):
    """torch's CPU thread count set to ``threads`` (an integer >= 1) for the block, and restored after it."""
    threads = validation.integer(threads, "threads", minimum=1)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def cpu_has_native_bf16(cpuinfo=Path("/proc/cpuinfo")):
    """Whether /proc/cpuinfo names a flag of ``NATIVE_BF16_FLAGS`` (False where it cannot be read)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)
