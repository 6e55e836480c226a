"""bf16 autocast (with channels_last) against fp32 training: test accuracy on real Fashion-MNIST, same seeds.

Trains the ``--quick`` baseline once per seed in each precision through ``main.py`` (the real training path) and
prints every seed's test accuracy (the checkpoint's, on --quick's 1,000 test images), each precision's mean and
sample standard deviation, and the difference of the means against the larger of the two spreads. bf16 is one of
the candidates training's probe (training/precision.py) picks among by speed on the condition this tests: the two
agree within their seed spread; run it on a machine where the probe picks bf16 (its `training precision:` line
says so). On a CPU without native bf16 (no AVX-512 BF16 or AMX) bf16 is emulated: the numbers are the same, the
time much longer (about 10x), so the probe does not pick it there.
Not a test.

    python bench/amp_accuracy.py [--device auto] [--seeds 0 1 2] [--threads N] [--data-dir datasets]
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import ROOT, load_average  # first: puts the repository on sys.path
from training.checkpoint import load_checkpoint

PRECISIONS = (("fp32", "--no-amp"), ("bf16", "--amp"))


def train(models_dir, flag, args):
    command = [sys.executable, str(ROOT / "main.py"), "--mode", "train", "--quick", "--dataset", "fashion-mnist",
               "--baseline-only", "--seeds", *map(str, args.seeds), flag, "--device", args.device,
               "--data-dir", args.data_dir, "--models-dir", str(models_dir)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def accuracies(models_dir, seeds):
    folder = models_dir / "fashion-mnist"
    return [load_checkpoint(folder / f"standard_seed{seed}.pt")["metadata"]["clean_test_acc"] for seed in seeds]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int)
    parser.add_argument("--data-dir", default="datasets")
    args = parser.parse_args()
    if len(set(args.seeds)) < 2:
        parser.error("--seeds needs at least two different seeds for a spread")
    print(f"load average before: {load_average()}")
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for name, flag in PRECISIONS:
            seconds = train(Path(work) / name, flag, args)
            results[name] = accuracies(Path(work) / name, args.seeds)
            print(f"{name}: {' '.join(f'{acc:.3f}' for acc in results[name])} (seeds {args.seeds}), mean "
                  f"{statistics.mean(results[name]):.4f} ± {statistics.stdev(results[name]):.4f} (sample std), "
                  f"{seconds:.0f} s for {len(args.seeds)} runs")
    difference = statistics.mean(results["bf16"]) - statistics.mean(results["fp32"])
    spread = max(statistics.stdev(values) for values in results.values())
    verdict = "within" if abs(difference) <= spread else "OUTSIDE"
    print(f"bf16 - fp32 mean test accuracy: {difference:+.4f}, {verdict} the larger seed spread {spread:.4f}")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
