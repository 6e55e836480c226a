"""Images/s of the adversarial-training step against the standard step, in one run (issue 26).

Each step is the project's ``training.loop.train_step`` on SimpleCNN at Fashion-MNIST's shape (1x28x28) and its
default recipe's batch (64), on pre-made batches of random uint8 images (no data set needed): (s) standard,
(f) FGSM-RS (1 attack step), (p) PGD-k (k attack steps, default 10), all fp32. The rates are interleaved best-of-R
passes, so a slow patch of a shared machine hits every loop alike. Expected cost: (f) about 2x a standard step
(one more forward and backward), (p) about k + 1 times.

    python bench/adv_train_throughput.py [--images N] [--repeats R] [--threads T] [--pgd-steps K]
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.spec import ModelSpec  # noqa: E402
from training.adversarial import AdversarialExamples, settings  # noqa: E402
from training.checkpoint import build_spec_model  # noqa: E402
from training.loop import TrainingObjective, train_step  # noqa: E402
from training.recipe import Recipe  # noqa: E402
from timing import load_average, timed  # noqa: E402

SHAPE = (1, 28, 28)
BATCH = 64
EPS = 0.1
DEVICE = torch.device("cpu")


def step_loop(batches, adv, steps):
    """A timed pass: one train_step per batch, with the variant's adversarial training (None: standard)."""
    torch.manual_seed(0)
    variant = ModelSpec.baseline_of(0, adv, EPS if adv else None, dataset="fashion-mnist")
    model = build_spec_model(variant, SHAPE, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    objective = TrainingObjective(model, variant)
    attack = AdversarialExamples(settings(variant, Recipe(adv_steps=steps if adv == "pgd" else None)), 0) \
        if adv else None

    def run():
        model.train()
        for x, y in batches:
            train_step(model, optimizer, x, y, objective, adversarial=attack)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="images per timed pass (default 512)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per loop; the best is reported")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--pgd-steps", type=int, default=10, help="PGD steps of (p) (default 10)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.images, *SHAPE), dtype=torch.uint8, generator=generator).float() / 255
    y = torch.randint(0, 10, (args.images,), generator=generator)
    batches = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, args.images, BATCH)]
    loops = {"(s) standard": step_loop(batches, None, 0), "(f) FGSM-RS": step_loop(batches, "fgsm-rs", 1),
             f"(p) PGD-{args.pgd_steps}": step_loop(batches, "pgd", args.pgd_steps)}
    print(f"cpu, threads {torch.get_num_threads()}, SimpleCNN {SHAPE}, batch {BATCH}, {args.images} images per pass, "
          f"eps {EPS}, best of {args.repeats}; load average {load_average()}", flush=True)
    best = dict.fromkeys(loops, 0.0)
    for run in loops.values():  # warm-up
        run()
    for _ in range(args.repeats):
        for name, run in loops.items():
            best[name] = max(best[name], args.images / timed(DEVICE, run)[0])
    for name, rate in best.items():
        print(f"{name}: {rate:8.1f} images/s")
    standard = best["(s) standard"]
    for name in list(best)[1:]:
        print(f"(s)/{name.split()[0]} = {standard / best[name]:.2f}  (the adversarial step's cost in standard steps)")
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
