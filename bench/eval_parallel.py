"""Evaluations two at a time on one thread each against one at a time on two threads, in one run.

The study (experiments/fashion_mnist.py) runs its small evaluations two at a time on one thread each; this measures
that: (s) W evaluations one after the other, each a process on T threads; (p) the same W as processes at once on 1
thread each. Each is ``ModelEvaluation`` of its own untrained SimpleCNN at Fashion-MNIST's shape (labels: its own
predictions) with the study's attacks and L-inf eps* search. Printed: both wall times, (s)/(p) (above 1: parallel
does more per hour), and whether every eps* is the same in both (threads must not change a result).

    python bench/eval_parallel.py [--workers 2] [--threads 2] [--n-eval 16]
"""
import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # the evaluation's progress bars would bury the result (before torch)
import torch  # noqa: E402

from timing import load_average  # noqa: E402  (first: puts the repository on sys.path)
from common.cli import ArgumentParser, at_least_one, run_main  # noqa: E402
from evaluation.config import EvalConfig  # noqa: E402
from evaluation.model import ModelEvaluation  # noqa: E402
from models.spec import ModelSpec  # noqa: E402
from models.simple_cnn import SimpleCNN  # noqa: E402

SHAPE = (1, 28, 28)
CLASSES = 10
EPS = 0.1


def evaluate_one(seed, n_eval):
    """Per-image L-inf eps* of one evaluation (the child process's work)."""
    torch.manual_seed(seed)
    model = SimpleCNN(SHAPE, num_classes=CLASSES).eval()
    x = torch.rand(n_eval, *SHAPE, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = model(x).argmax(1)
    config = EvalConfig().with_options(attacks=("pgd", "autoattack"), eps=EPS, n_eval=n_eval, steps=20,
                                       check_n=n_eval, minimal_norms=("linf",), audit_radii=())
    config.validate()
    evaluation = ModelEvaluation(model, ModelSpec.baseline_of(0), (x, y), config).run()
    return list(evaluation.minimal["linf"].eps_star)


def launch(seed, threads, n_eval):
    command = [sys.executable, __file__, "--child", str(seed), "--threads", str(threads), "--n-eval", str(n_eval)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def finish(process):
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"an evaluation process failed (exit {process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def evaluations(workers, threads, n_eval, at_once):
    """(seconds, each evaluation's eps*): the processes one after the other, or all started at once."""
    started = time.perf_counter()
    if at_once:
        results = [finish(process) for process in [launch(seed, threads, n_eval) for seed in range(workers)]]
    else:
        results = [finish(launch(seed, threads, n_eval)) for seed in range(workers)]
    return time.perf_counter() - started, results


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=at_least_one, default=2, help="evaluations, and processes at once in (p)")
    parser.add_argument("--threads", type=at_least_one, default=2, help="torch threads of each evaluation in (s)")
    parser.add_argument("--n-eval", type=at_least_one, default=16, help="images per evaluation")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)  # one evaluation, its seed
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.child is not None:
        torch.set_num_threads(args.threads)
        print(json.dumps(evaluate_one(args.child, args.n_eval)))
        return
    print(f"{args.workers} evaluations of {args.n_eval} images; load average {load_average()}", flush=True)
    one_at_a_time, first = evaluations(args.workers, args.threads, args.n_eval, at_once=False)
    print(f"(s) one at a time on {args.threads} threads: {one_at_a_time:.1f} s", flush=True)
    at_once, second = evaluations(args.workers, 1, args.n_eval, at_once=True)
    print(f"(p) {args.workers} at once on 1 thread each: {at_once:.1f} s", flush=True)
    same = sum(a == b for one, two in zip(first, second) for a, b in zip(one, two))
    total = sum(len(one) for one in first)
    print(f"throughput (s)/(p) = {one_at_a_time / at_once:.2f}x; per-image eps* identical in {same} of {total}; "
          f"load average {load_average()}")


if __name__ == "__main__":
    run_main(main)
