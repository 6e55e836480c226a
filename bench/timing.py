"""What the benchmarks share: timing that includes the work queued on an accelerator, best-of-R rates, training
loops. Importing it puts the repository on ``sys.path`` (the scripts run as ``python bench/NAME.py``)."""
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, function):
    """``(seconds, result)`` of ``function()``, waiting for the device before and after."""
    synchronize(device)
    started = time.perf_counter()
    result = function()
    synchronize(device)
    return time.perf_counter() - started, result


def load_average():
    """The 1-minute load average, as text (other work on a shared machine slows every timing)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def best_rates(device, loops, repeats):
    """name -> the best items/s of each of ``loops`` (name -> (run, items per run)): an untimed warm-up run of each,
    then ``repeats`` timed passes interleaved, so that a slow patch of a shared machine hits every loop alike."""
    for run, _ in loops.values():
        run()
    best = dict.fromkeys(loops, 0.0)
    for _ in range(repeats):
        for name, (run, count) in loops.items():
            best[name] = max(best[name], count / timed(device, run)[0])
    return best


def random_data(count, shape, classes=10):
    """``count`` random uint8 images of ``shape`` and their labels, the same in every run."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, *shape), dtype=torch.uint8, generator=generator)
    return images, torch.randint(0, classes, (count,), generator=generator)


def fresh_training(variant, shape, device=torch.device("cpu"), channels_last=False, compile=False):
    """A seeded model of ``variant`` (compiled for training if asked), its SGD optimiser and training objective."""
    from training.checkpoint import build_spec_model
    from training.loop import TrainingObjective

    torch.manual_seed(0)
    model = build_spec_model(variant, shape, 10).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    trained = torch.compile(model) if compile else model
    return trained, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), TrainingObjective(model, variant)


def step_loop(training, batches, **step):
    """A timed pass: one ``training.loop.train_step`` of ``training`` (fresh_training's) per batch."""
    from training.loop import train_step

    model, optimizer, objective = training

    def run():
        model.train()
        for x, y in batches:
            train_step(model, optimizer, x, y, objective, **step)
    return run
