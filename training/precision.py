"""Training precision and memory layout, chosen by measuring this machine (``choose_training_mode``).

A CPU flag does not predict which setting trains fastest (an AVX-512 BF16 Xeon ran bf16 + channels_last at 0.65x
of fp32 channels_last, an AVX-512 BF16 EPYC at 2.4x fp32), so a few training steps of the actual model are timed
in each candidate the user's options allow, and the fastest is cached per machine, torch, threads, model and input
shape. bf16 is a candidate on the condition ``bench/amp_accuracy.py`` tests (run it where the probe picks bf16).
``PIN_ENV`` set to a mode's key pins the choice without measuring (the test suite sets it).
"""
import json
import math
import os
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from common.errors import ConfigError, FileProblem
from common.io import atomic_write_text
from models import build_model
from training.loop import train_step

PROJECT = "sparsity-robustness"
CACHE_NAME = "training-mode.json"
CACHE_FORMAT = "sparsity-robustness/training-mode-probe/1"
PIN_ENV = "SPARSITY_ROBUSTNESS_TRAINING_MODE"
# Small: emulated bf16 (no bf16 matrix unit) runs about 10x slower than fp32, and the probe must fit in a few
# seconds on one slow core.
PROBE_BATCH = 16
PROBE_STEPS = 3
PROBE_BUDGET_S = 1.5  # the rounds stop after this much timed stepping (each candidate still gets one timed step)
# A candidate whose warm-up step alone takes this many times the fastest timed step so far is not timed further
SLOW_FACTOR = 4


@dataclass(frozen=True)
class TrainingMode:
    """How training computes: ``amp`` (bf16 autocast, a recipe field: it changes the weights beyond rounding) and
    ``channels_last``, which changes only rounding: no recipe field (every existing checkpoint's recipe would
    differ and refuse to resume), but recorded in the checkpoint's metadata."""

    amp: bool
    channels_last: bool

    @property
    def key(self):
        return ("bf16" if self.amp else "fp32") + ("-cl" if self.channels_last else "")

    @property
    def name(self):
        return ("bf16 autocast" if self.amp else "fp32") + (" + channels_last" if self.channels_last else " contiguous")


FP32, FP32_CL, BF16, BF16_CL = (TrainingMode(amp, cl) for amp in (False, True) for cl in (False, True))
MODES = {mode.key: mode for mode in (FP32, FP32_CL, BF16, BF16_CL)}
# Issue 25's three; bf16 contiguous measured slower than bf16 + channels_last there (212 against 236 images/s)
CANDIDATES = (FP32, FP32_CL, BF16_CL)
# Where the device cannot be timed here (a Slurm task's GPU on a login node) or has no candidates to compare
UNMEASURED = {"cuda": BF16_CL, "cpu": FP32, "mps": FP32}


@dataclass(frozen=True)
class Choice:
    mode: TrainingMode
    how: str  # how it was chosen, for the printed line
    images_per_second: dict | None = None  # candidate key -> measured speed, where measured

    def line(self):
        """The one line a training run prints about its precision."""
        text = f"training precision: {self.mode.name} ({self.how}"
        if self.images_per_second:
            speeds = ", ".join(f"{MODES[key].name} {value:.0f}" for key, value in self.images_per_second.items())
            text += f"; images/s at batch {PROBE_BATCH}: {speeds}"
        return text + "; --amp/--no-amp and --channels-last/--no-channels-last choose)"


def choose_training_mode(device, model, input_shape, num_classes, amp=None, channels_last=None, cache_dir=None,
                         measure=True, remeasure=False):
    """The Choice for training ``model`` on ``input_shape`` on ``device``: what the user gave (None: not given), the
    rest from ``PIN_ENV`` where set, else the fastest measured candidate that agrees with what was given (without
    ``measure``, or on a device that cannot be timed here, the device type's default, ``UNMEASURED``).
    ``remeasure``: probe again even where the cache has an entry."""
    device = torch.device(device)
    if amp is not None and channels_last is not None:
        return Choice(TrainingMode(amp, channels_last), "as given")
    mode = pinned_mode()
    if mode is not None:
        return Choice(TrainingMode(mode.amp if amp is None else amp,
                                   mode.channels_last if channels_last is None else channels_last),
                      f"pinned by {PIN_ENV}={mode.key}")

    def agrees(mode):
        return (amp is None or mode.amp == amp) and (channels_last is None or mode.channels_last == channels_last)

    candidates = [mode for mode in CANDIDATES if agrees(mode)]  # never empty: at most one of the two is given
    if not measure or device.type not in ("cpu", "cuda") or (device.type == "cuda" and not torch.cuda.is_available()):
        default = UNMEASURED.get(device.type, FP32)
        return Choice(default if agrees(default) else candidates[0], f"the {device.type} default, not measured")
    if len(candidates) == 1:
        return Choice(candidates[0], "the only candidate with the options given")
    speeds, source = probe_speeds(device, model, input_shape, num_classes, cache_dir, remeasure)
    fastest = max(candidates, key=lambda mode: speeds[mode.key])
    where = {"cached": f"cached in {cache_file(cache_dir)}", "saved": f"measured now, saved to {cache_file(cache_dir)}",
             "unsaved": "measured now, not saved"}[source]
    return Choice(fastest, f"fastest here of {len(candidates)}, {where}", {m.key: speeds[m.key] for m in candidates})


def pinned_mode():
    """The TrainingMode ``PIN_ENV`` pins, or None where it is unset or empty; a ConfigError for another value."""
    pinned = os.environ.get(PIN_ENV)
    if not pinned:
        return None
    if pinned not in MODES:
        raise ConfigError(PIN_ENV, f"(environment) is {pinned!r}, not one of {', '.join(MODES)}; unset it to "
                                   f"measure, or choose one")
    return MODES[pinned]


def cache_file(cache_dir=None):
    """The probe's cache: in ``cache_dir``, else the project's folder in ``$XDG_CACHE_HOME`` (where absolute, as the
    XDG spec says) or ``~/.cache``."""
    if cache_dir is None:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        cache_dir = (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / PROJECT
    return Path(cache_dir) / CACHE_NAME


def hardware_name(device):
    """The CPU's model name (Linux /proc/cpuinfo; elsewhere what Python knows) or the GPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cache_key(device, model, input_shape):
    shape = "x".join(map(str, input_shape))
    return (f"{device.type} | {hardware_name(device)} | torch {torch.__version__} | {torch.get_num_threads()} threads"
            f" | {model} | {shape}")


def probe_speeds(device, model, input_shape, num_classes, cache_dir=None, remeasure=False):
    """``({candidate key: images/s}, "cached", "saved" or "unsaved")``: from the cache, else measured and saved (a
    missing, unreadable or corrupt file is rebuilt; one that cannot be written is a warning)."""
    path, key = cache_file(cache_dir), cache_key(device, model, input_shape)
    entries = read_cache(path)
    speeds = entries.get(key)
    if valid_speeds(speeds) and not remeasure:
        return speeds, "cached"
    speeds = measure_candidates(device, model, input_shape, num_classes, CANDIDATES)
    entries[key] = speeds
    try:
        atomic_write_text(path, json.dumps({"format": CACHE_FORMAT, "entries": entries}, indent=2) + "\n")
    except FileProblem as err:  # the choice holds for this run; the next one measures again
        warnings.warn(f"the training-precision probe's cache was not saved: {err}")
        return speeds, "unsaved"
    return speeds, "saved"


def valid_speeds(speeds):
    return (isinstance(speeds, dict) and all(
        isinstance(speeds.get(mode.key), (int, float)) and math.isfinite(speeds[mode.key]) and speeds[mode.key] > 0
        for mode in CANDIDATES))


def read_cache(path):
    """The cache's entries; {} where the file is missing, unreadable or not one of ours (it is then rebuilt)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    ours = isinstance(record, dict) and record.get("format") == CACHE_FORMAT and isinstance(record.get("entries"), dict)
    return record["entries"] if ours else {}


def measure_candidates(device, model, input_shape, num_classes, candidates):
    """images/s of a training step of ``model`` in each candidate at batch ``PROBE_BATCH``: one warm-up step each,
    then up to ``PROBE_STEPS`` rounds of one timed step per candidate (interleaved, so that a slow patch of a shared
    machine hits every candidate alike) until ``PROBE_BUDGET_S``; a candidate's fastest step counts (the least
    disturbed). A candidate whose warm-up step is ``SLOW_FACTOR`` times the fastest timed step is rated by its
    warm-up alone (it loses either way, and emulated bf16 would take seconds more). torch's RNG is left as it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        setups = {mode: probe_setup(device, model, input_shape, num_classes, mode) for mode in candidates}
        warm_up = {mode: timed_step(*setup, mode.amp, device) for mode, setup in setups.items()}  # kernels, allocation
        times = {mode: [] for mode in candidates}
        rated_by_warm_up = set()
        for _ in range(PROBE_STEPS):
            for mode, setup in setups.items():
                if mode in rated_by_warm_up:
                    continue
                timed = [t for mode_times in times.values() for t in mode_times]
                if not times[mode] and timed and warm_up[mode] > SLOW_FACTOR * min(timed):
                    rated_by_warm_up.add(mode)
                    continue
                times[mode].append(timed_step(*setup, mode.amp, device))
            if sum(sum(mode_times) for mode_times in times.values()) >= PROBE_BUDGET_S:
                break
        return {mode.key: PROBE_BATCH / max(min(times[mode]) if times[mode] else warm_up[mode], 1e-9)
                for mode in candidates}


def probe_setup(device, model, input_shape, num_classes, mode):
    """(network, optimizer, x, y) of one candidate: the model in the candidate's layout and a random batch."""
    network = build_model(model, input_shape, num_classes).to(device)
    x = torch.rand(PROBE_BATCH, *input_shape, device=device)
    if mode.channels_last:
        network = network.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(num_classes, (PROBE_BATCH,), device=device)
    return network, torch.optim.SGD(network.parameters(), lr=1e-3, momentum=0.9), x, y


def timed_step(network, optimizer, x, y, amp, device):
    """Seconds of one training step as training.loop.train_step runs it."""
    started = time.perf_counter()
    train_step(network, optimizer, x, y, F.cross_entropy, amp)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started
