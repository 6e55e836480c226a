"""Evaluation overhead: ``evaluate_model`` for one variant against the same attacks called directly.

(a) ``evaluation.runner.evaluate_model`` with the protocol's attack list (PGD, AutoAttack, Square, NES;
    sized for a CPU by default: 16 images, PGD-20, Square (200 queries) and NES (5 iterations of 20
    pairs) on 4 of them, eps* in L-inf and L2 with FAB-20, the checks on all 16);
(b) the work those numbers need, done directly on the same images in the same batches: one clean
    forward pass, each configured attack called on its images (and at each eps of the sweep), a
    forward pass over every adversarial batch, eps* per norm (``evaluation.minimal.minimal_perturbations``), and
    the checks' own runs (PGD at eps = 1, PGD at 2·eps
    where the sweep lacks it, one input-gradient pass).

Target: (a)/(b) <= 1.10, i.e. the evaluation's bookkeeping costs at most a tenth. An evaluation that
repeated work (clean predictions per attack batch, APGD inside AutoAttack again, PGD at 2·eps twice)
would show here. The model is an untrained SimpleCNN whose labels are its own predictions, so every
image starts correct. Not a test.

    python bench/eval_overhead.py [--device cpu] [--threads 1] [--n-eval 32] [--attacks pgd autoattack square nes]
                                  [--eps-sweep EPS ...] [--minimal-norms linf l2] [--fab-steps 20] [--repeats 2]
"""
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the evaluation's progress bars would bury the result (before torch,
# which imports tqdm)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attacks import ATTACKS, PGD  # noqa: E402
from attacks.base import ALL_IMAGES, QUERY_SUBSET, WHITE_BOX  # noqa: E402
from common.cli import ArgumentParser, fraction, run_main  # noqa: E402
from common.device import DEVICE_CHOICES, cpu_threads, resolve_device  # noqa: E402
from evaluation.config import EvalConfig  # noqa: E402
from evaluation.metrics import make_targets  # noqa: E402
from evaluation.minimal import NORMS, Search, minimal_perturbations  # noqa: E402
from evaluation.runner import evaluate_model, query_subset  # noqa: E402
from models.simple_cnn import SimpleCNN  # noqa: E402
from timing import load_average, timed  # noqa: E402

CLASSES = 10


def attack_batches(model, attack, x, y, batch_size, targeted=False):
    """``attack`` over x in batches, and the model's predictions on each adversarial batch."""
    for start in range(0, len(x), batch_size):
        adversarial, _ = attack(x[start:start + batch_size], y[start:start + batch_size], targeted=targeted)
        with torch.inference_mode():
            model(adversarial).argmax(1)


def direct(model, x, y, config, device):
    """The attacks and passes that ``evaluate_model(model, x, y, ...)`` reports on, called directly, once each."""
    config = config.resolved(device, len(x))
    with torch.inference_mode():
        for start in range(0, len(x), config.batch_size):
            model(x[start:start + config.batch_size]).argmax(1)
    x, y = x[:config.n_eval], y[:config.n_eval]
    images = {ALL_IMAGES: torch.arange(config.n_eval),
              QUERY_SUBSET: query_subset(config.n_eval, config.query_n, config.seed)}
    targets = make_targets(y, CLASSES, config.seed).to(device)
    for name in config.attacks:
        for run in ATTACKS[name].evaluation_runs(model, config):
            indices = images[run.images]
            batch = config.black_box_batch_size if run.attack.counts_queries else config.batch_size
            goal = targets[indices] if run.targeted else y[indices]
            attack_batches(model, run.attack, x[indices], goal, batch, run.targeted)
    for eps in config.eps_sweep:
        if eps == config.eps:
            continue
        for name in config.attacks:
            for run in ATTACKS[name].evaluation_runs(model, replace(config, eps=eps)):
                if run.attack.threat_model == WHITE_BOX and not run.targeted and run.images == ALL_IMAGES:
                    attack_batches(model, run.attack, x, y, config.batch_size)
    for norm in config.minimal_norms:
        minimal_perturbations(model, x, y, device, norm, config.minimal_limit, Search.of(config), config.batch_size)
    n = min(config.check_n, len(x))
    pgd = config.settings_of("pgd")
    attack_batches(model, PGD(model, eps=1.0, alpha=2.5 / pgd.steps, steps=pgd.steps, seed=config.seed),
                   x[:n], y[:n], config.batch_size)
    if "pgd" in config.attacks and min(2 * config.eps, 1.0) not in config.eps_sweep:
        attack_batches(model, PGD(model, eps=min(2 * config.eps, 1.0), alpha=config.alpha, steps=pgd.steps,
                                  restarts=pgd.restarts, seed=config.seed), x[:n], y[:n], config.batch_size)
    for start in range(0, n, config.batch_size):
        batch = x[start:min(start + config.batch_size, n)].clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(batch), y[start:start + len(batch)], reduction="sum"), batch)


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=DEVICE_CHOICES)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as main.py)")
    parser.add_argument("--attacks", nargs="+", default=list(EvalConfig().attacks), choices=list(ATTACKS))
    parser.add_argument("--n-eval", type=int, default=16, help="images attacked (and the test set)")
    parser.add_argument("--steps", type=int, default=20, help="PGD steps")
    parser.add_argument("--query-n", type=int, default=4, help="images of Square and NES")
    parser.add_argument("--square-queries", type=int, default=200)
    parser.add_argument("--nes-steps", type=int, default=5)
    parser.add_argument("--nes-samples", type=int, default=20)
    parser.add_argument("--eps", type=fraction, default=8 / 255)
    parser.add_argument("--eps-sweep", type=fraction, nargs="*", default=())
    parser.add_argument("--minimal-norms", nargs="*", default=list(NORMS), choices=list(NORMS),
                        help="norms of eps* (none given: not measured)")
    parser.add_argument("--fab-steps", type=int, default=20, help="FAB's iterations for eps*")
    parser.add_argument("--repeats", type=int, default=2, help="every timing is the best of this many")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = resolve_device(args.device)
    config = EvalConfig().with_options(
        attacks=tuple(args.attacks), eps=args.eps, n_eval=args.n_eval, steps=args.steps, query_n=args.query_n,
        square_queries=args.square_queries, nes_steps=args.nes_steps, nes_samples=args.nes_samples,
        eps_sweep=tuple(args.eps_sweep), check_n=args.n_eval, minimal_norms=tuple(args.minimal_norms),
        fab_steps=args.fab_steps, fab_restarts=1, minimal_targets=1, audit_radii=())  # the audit aside
    config.validate()
    with cpu_threads(args.threads):
        torch.manual_seed(0)
        model = SimpleCNN(num_classes=CLASSES).to(device).eval()
        x = torch.rand(args.n_eval, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            y = model(x).argmax(1)
        sweep = " ".join(f"{eps * 255:g}/255" for eps in config.eps_sweep) or "none"
        print(f"device {device}, threads {torch.get_num_threads()}, {args.n_eval} images, attacks "
              f"{' '.join(config.attacks)}, eps sweep {sweep}, eps* {' '.join(config.minimal_norms) or 'none'}; load average {load_average()}", flush=True)
        best_evaluation = best_direct = float("inf")
        for _ in range(args.repeats):  # interleaved, so that load from other processes hits both alike
            seconds, evaluation = timed(device, lambda: evaluate_model(model, x, y.cpu(), CLASSES, device, config))
            best_evaluation = min(best_evaluation, seconds)
            direct_seconds, _ = timed(device, lambda: direct(model, x, y, config, device))
            best_direct = min(best_direct, direct_seconds)
        print("robust accuracy: " + ", ".join(f"{key} {entry.robust_acc:.2f}"
                                              for key, entry in evaluation.attacks.items()))
        print(f"(a) evaluate_model {best_evaluation:.2f} s, (b) the same attacks called directly {best_direct:.2f} s: "
              f"(a)/(b) = {best_evaluation / best_direct:.3f} (target <= 1.10); load average {load_average()}")


if __name__ == "__main__":
    run_main(main)
