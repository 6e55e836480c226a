"""Batched synthetic trainer vs a one-run-at-a-time reference loop on the same runs.

    python bench/synthetic_speed.py            # quick: 6 runs (strength 0 and the default sweep's strongest),
                                               # d = m = 200, width 500, at most 2000 steps
    python bench/synthetic_speed.py --full     # the default experiment's runs and step cap (long)

Prints both wall times, their ratio (target <= 0.25) and the largest relative
difference of the final data losses (must be <= 1e-4). Runs in float64 by default:
normalised steps amplify float32 rounding (a 1e-4 relative loss difference at a loss
of 1e-7 is a 1e-4 absolute difference in a margin of 16), and the comparison is
about the algorithm, not about summation order; --float32 times the CLI's precision.

Measurement: both trainers run with the same thread count (--threads, 1 by default: on
this shared 2-core CPU a second OpenMP thread mostly waits for a busy core, which slows
both loops many times over), after an untimed warm-up of each, and each reports the
best of --repeats timed passes, interleaved so that both see the same load.
"""
import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic.config import SyntheticConfig  # noqa: E402
from synthetic.experiment import run_specs  # noqa: E402
from synthetic.trainer import (TrainSettings, dropout_masks, final_statistics, prepare_runs, subset,  # noqa: E402
                               train_stacked)

TARGET_RATIO = 0.25
LOSS_RTOL = 1e-4


def reference_train(batch, settings):
    """One run (batch of size 1), written the plain way: autograd, and the stopping rules checked on the host
    every step. Same rules as the batched trainer: stop once the data loss without dropout is below the target,
    on a stalled best objective, or at the cap; the last iterate is the result."""
    w, b, v = (p[0].clone().requires_grad_() for p in (batch.net.w, batch.net.b, batch.net.v))
    x, y, l1, p = batch.x[0], batch.y[0], float(batch.l1[0]), batch.specs[0].dropout
    best, previous_best = math.inf, math.inf
    for step in range(1, settings.steps + 1):
        mask = dropout_masks([p], batch.dropout_generators, (x.shape[0], w.shape[0]), x.device, x.dtype)
        hidden = torch.relu(x @ w.T + b)
        dropped = hidden if mask is None else hidden * mask[0]
        fit_loss = F.softplus(-y * (hidden @ v)).mean()
        objective = F.softplus(-y * (dropped @ v)).mean() + l1 * hidden.sum()
        value = objective.item()
        best = min(best, value)
        if fit_loss.item() < settings.loss_target or not math.isfinite(value):
            break
        w.grad = b.grad = v.grad = None
        objective.backward()
        size = settings.lr / value if settings.optimizer == "ngd" else settings.lr
        with torch.no_grad():
            for param in (w, b, v):
                param -= size * param.grad
        if step % settings.check_every == 0:
            if math.isfinite(previous_best) and previous_best - best <= settings.stall_tol * previous_best:
                break
            previous_best = best
    return w.detach(), b.detach(), v.detach()


def time_batched(specs, settings, dtype):
    """Seconds for the batched trainer on ``specs`` and the final data loss of each run."""
    batch = prepare_runs(specs, 200, 200, 500, dtype=dtype)
    started = time.perf_counter()
    outcome = train_stacked(batch, settings, progress=False)
    seconds = time.perf_counter() - started
    return seconds, final_statistics(outcome.net, batch.x, batch.y, batch.l1)["final_loss"]


def time_reference(specs, settings, dtype):
    """Seconds for the reference loop on ``specs``, one run after another, and the final data loss of each run."""
    batch = prepare_runs(specs, 200, 200, 500, dtype=dtype)
    started = time.perf_counter()
    losses = []
    for r in range(len(specs)):
        single = subset(batch, [r])
        w, b, v = reference_train(single, settings)
        hidden = torch.relu(single.x[0] @ w.T + b)
        losses.append(F.softplus(-single.y[0] * (hidden @ v)).mean().item())
    seconds = time.perf_counter() - started
    return seconds, torch.tensor(losses, dtype=dtype)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the default experiment's runs (minutes)")
    parser.add_argument("--mode", choices=("l1", "dropout"), default="l1")
    parser.add_argument("--float32", action="store_true", help="train in float32, as the experiment does")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for both trainers")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes of each trainer; the best counts")
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be at least 1")
    torch.set_num_threads(args.threads)
    if args.full:
        config = SyntheticConfig.from_options(args.mode)
    else:
        strongest = max(SyntheticConfig.from_options(args.mode).strengths)
        config = SyntheticConfig.from_options(args.mode, strengths=[0.0, strongest], seeds=[0, 1, 2], steps=2000)
    specs, settings = [spec for _, _, spec in run_specs(config)], config.train_settings()
    dtype = torch.float32 if args.float32 else torch.float64
    print(f"{len(specs)} runs ({args.mode}), d = m = 200, width 500, at most {settings.steps} steps, "
          f"{dtype}, {torch.get_num_threads()} threads, best of {args.repeats}")

    warm_up = TrainSettings(steps=5, check_every=2)
    time_batched(specs, warm_up, dtype)
    time_reference(specs[:1], warm_up, dtype)
    batched_times, reference_times = [], []
    for _ in range(args.repeats):
        seconds, batched_loss = time_batched(specs, settings, dtype)
        batched_times.append(seconds)
        seconds, reference_loss = time_reference(specs, settings, dtype)
        reference_times.append(seconds)
    batched_s, reference_s = min(batched_times), min(reference_times)

    relative = ((batched_loss - reference_loss).abs() / reference_loss.abs().clamp_min(1e-30)).max().item()
    ratio = batched_s / reference_s
    for (strength, seed, _), ours, theirs in zip(run_specs(config), batched_loss.tolist(), reference_loss.tolist()):
        print(f"  strength {strength:<7g} seed {seed}: "
              f"final data loss {ours:.6e} batched, {theirs:.6e} reference")
    passes = {name: ", ".join(f"{t:.2f}" for t in times)
              for name, times in (("batched", batched_times), ("reference", reference_times))}
    print(f"batched     {batched_s:8.2f} s  (passes: {passes['batched']})")
    print(f"reference   {reference_s:8.2f} s  (one run at a time; passes: {passes['reference']})")
    print(f"ratio       {ratio:8.3f}  (target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    print(f"final data losses: largest relative difference {relative:.2e} "
          f"({'within' if relative <= LOSS_RTOL else 'NOT within'} {LOSS_RTOL:g})")


if __name__ == "__main__":
    main()
