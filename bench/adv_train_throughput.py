"""Images/s of the adversarial-training step against the standard step, in one run (issue 26).

Each step is the project's ``training.loop.train_step`` on SimpleCNN at Fashion-MNIST's shape (1x28x28) and its
default recipe's batch (64), on pre-made batches of random uint8 images (no data set needed): (s) standard,
(f) FGSM-RS (1 attack step), (p) PGD-k (k attack steps, default 10), all fp32, interleaved best-of-R. Expected
cost: (f) about 2x a standard step (one more forward and backward), (p) about k + 1 times.

    python bench/adv_train_throughput.py [--images N] [--repeats R] [--threads T] [--pgd-steps K]
"""
import argparse

import torch

from timing import best_rates, fresh_training, load_average, random_data, step_loop  # first: puts the repository
# on sys.path
from models.spec import ModelSpec
from training.adversarial import AdversarialExamples, settings
from training.recipe import Recipe

SHAPE = (1, 28, 28)
BATCH = 64
EPS = 0.1


def adversarial_loop(batches, adv, steps):
    """A timed pass with the variant's adversarial training (None: standard)."""
    variant = ModelSpec.baseline_of(0, adv, EPS if adv else None, dataset="fashion-mnist")
    training = fresh_training(variant, SHAPE)
    attack = AdversarialExamples(settings(variant, Recipe(adv_steps=steps if adv == "pgd" else None)), 0) \
        if adv else None
    return step_loop(training, batches, adversarial=attack)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="images per timed pass (default 512)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per loop; the best is reported")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--pgd-steps", type=int, default=10, help="PGD steps of (p) (default 10)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y = random_data(args.images, SHAPE)
    x = x.float() / 255
    batches = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, args.images, BATCH)]
    kinds = {"(s) standard": (None, 0), "(f) FGSM-RS": ("fgsm-rs", 1),
             f"(p) PGD-{args.pgd_steps}": ("pgd", args.pgd_steps)}
    loops = {name: (adversarial_loop(batches, *kind), args.images) for name, kind in kinds.items()}
    print(f"cpu, threads {torch.get_num_threads()}, SimpleCNN {SHAPE}, batch {BATCH}, {args.images} images per pass, "
          f"eps {EPS}, best of {args.repeats}; load average {load_average()}", flush=True)
    best = best_rates(torch.device("cpu"), loops, args.repeats)
    for name, rate in best.items():
        print(f"{name}: {rate:8.1f} images/s")
    for name in list(best)[1:]:
        print(f"(s)/{name.split()[0]} = {best['(s) standard'] / best[name]:.2f}  (the adversarial step's cost in "
              f"standard steps)")
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
