"""The --gpu study's expected time, from counted work (issue 29): no GPU has run this project, so its time is the
work the design needs, counted here on a CPU, divided by a GPU's rate, stated as an assumption.

(a) Counted: every image that goes through a model, forward and backward, in one model's evaluation at the --gpu
    variant's settings (experiments/fashion_mnist.py's GPU: docs/usage.md's protocol, every default: PGD-50,
    AutoAttack, Square at 5,000 queries, NES in its 4 configurations, eps* in L-inf and L2 with the full search, the
    audit at 0.5x/1x/1.5x the baseline's median eps* on every image, the checks on 500, k-WTA's adaptive attacks),
    on the first N test images (and all N as the query subset) of the seed-0 checkpoint of each arm of the CPU study
    (their models are the --gpu recipe's), attributed to the measure that made the pass (the evaluation function on
    the call stack).
(b) Scaled to the design: each measure's passes per image times its images at full size (10,000 white-box, 1,000
    query-based, 500 checks), times 20 seeds per arm; training from each checkpoint's recipe (epochs x training
    images, one more pass per attack step for FGSM-RS).
(c) Converted to FLOPs (torch.utils.flop_counter on the model: backward 2x forward) and to hours at the assumed
    achieved rates given by --tflops. The evaluation runs in fp32 on every device (docs/usage.md, Precision), so an
    H100's tensor-core peak does not bound it; bench/attack_throughput.py --device cuda (in bench/gpu_check.sh)
    measures the real rate the day a GPU is lent.

NES adaptive's full schedule (100 steps, 100 -> 1,000 -> 20,000 pairs: up to 2.4 million queries per image and
radius) cannot run on a CPU: the k-WTA arm is counted with --adaptive-schedule's CPU setting and NES adaptive's
full-size passes are given as the schedule's bound (every image robust to the end), beside the rest.

A small N makes the count noisy where images differ (a robust image costs AutoAttack's whole ensemble, a broken one
its first attack); the count is per image of the first N, not a sample of the test set's mix. Not a test.

    python bench/study_cost.py --models-dir trained-models/study-cpu [--n 4] [--arms standard control kwta]
                               [--tflops 10 30 100] [--threads 1]
"""
import argparse
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the evaluation's progress bars would bury the result (before torch)
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attacks.nes import sample_schedule  # noqa: E402
from attacks.nes_adaptive import NESAdaptiveSettings  # noqa: E402
from common.cli import at_least_one, run_main  # noqa: E402
from evaluation.config import EvalConfig  # noqa: E402
from evaluation.runner import evaluate_model  # noqa: E402
from training.checkpoint import checkpoint_test_set, load_model  # noqa: E402

DATASET = "fashion-mnist"
SEEDS_PER_ARM = 20  # experiments/fashion_mnist.py's GPU_SEEDS
TEST_IMAGES = 10_000
# The arms of the design (experiments/fashion_mnist.py ARMS) by their seed-0 checkpoint in the CPU study's models
ARMS = {
    "standard": "standard_seed0.pt",
    "control": "standard_at-fgsm-rs-e0.1_seed0.pt",
    "l1-conv1": "l1/conv1_s2_seed0.pt",
    "l1-fc1": "l1/fc1_s1_seed0.pt",
    "dropout": "dropout/conv1_s0.3_seed0.pt",
    "kwta": "kwta/conv1_s0.1_seed0.pt",
    "l1-on-control": "l1/conv1_s2_at-fgsm-rs-e0.1_seed0.pt",
}
# Each arm's kind of evaluation cost: an arm not counted (--arms) takes the per-model cost of the counted arm of its
# kind (standard training, adversarial training, k-WTA's adaptive attacks), said in the output.
KIND = {"standard": "standard", "l1-conv1": "standard", "l1-fc1": "standard", "dropout": "standard",
        "control": "control", "l1-on-control": "control", "kwta": "kwta"}
CPU_ADAPTIVE_SCHEDULE = ((0, 10), (5, 50), (10, 200))  # the CPU study's --adaptive-schedule, over 20 steps
CPU_ADAPTIVE_STEPS = 20


class PassCounter:
    """Counts the images each model call processes, forward and backward (each backward through the call, so FAB's
    per-class backward passes of one forward count each), keyed by the measure on the call stack (``measure``)."""

    def __init__(self):
        self.forward, self.backward = Counter(), Counter()
        self.kinds = {}  # measure -> "white-box" or "query" (how it scales to the full design)

    def attach(self, model):
        return model.register_forward_pre_hook(self._pre_hook)

    def _pre_hook(self, module, args):
        x = args[0]
        measure, kind = self.measure()
        self.kinds.setdefault(measure, kind)
        self.forward[measure] += x.shape[0]
        if x.requires_grad:
            # a fresh alias per call, so that a hook fires once per backward through this call (a hook on a leaf
            # reused across calls would fire once per call it was registered in)
            alias = x.view_as(x)
            alias.register_hook(lambda grad: self.backward.update({measure: grad.shape[0]}))
            return (alias, *args[1:])
        return None

    @staticmethod
    def measure():
        """``(measure, kind)`` of the pass being made: the evaluation function on the call stack that names it."""
        frames, frame = [], sys._getframe(2)
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        names = [f.f_code.co_name for f in frames]
        if "run_checks" in names:
            return "checks", "checks"
        if "robustness_curves" in names:
            return "eps sweep", "white-box"
        if "minimal_perturbations" in names:
            return f"eps* search ({frames[names.index('minimal_perturbations')].f_locals['norm']})", "white-box"
        if "fold" in names:
            return "eps* folding", "white-box"
        if "run_attack" in names:
            local = frames[names.index("run_attack")].f_locals
            name = local["desc"].split(" eps=")[0]
            return name, "query" if getattr(local["attack"], "counts_queries", False) else "white-box"
        if "evaluate_clean" in names:
            return "clean", "clean"
        return "other", "white-box"


def gpu_config(n, kwta):
    """The --gpu variant's evaluation (every default) on n images, n of them the query subset and the checks';
    on a k-WTA model NES adaptive at the CPU study's schedule."""
    options = {"attacks": ("pgd", "autoattack", "square", "nes"), "n_eval": n, "query_n": n, "check_n": n}
    if kwta:
        options.update(adaptive_schedule=CPU_ADAPTIVE_SCHEDULE, adaptive_steps=CPU_ADAPTIVE_STEPS)
    return EvalConfig.from_options(dataset=DATASET, **options)


def forward_flops(model, image_shape):
    x = torch.zeros(8, *image_shape)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 8


def adaptive_bound(radii, query_images):
    """NES adaptive's full-size queries per model where every image stays robust to its last step, at each radius."""
    settings = NESAdaptiveSettings()
    schedule = sample_schedule(settings.schedule)
    per_image = 2 + sum(1 + 2 * max(pairs for start, pairs in schedule if start <= step)
                        for step in range(settings.steps))
    return per_image * query_images * radii, per_image


def training_passes(metadata):
    """(forward, backward) images of the checkpoint's training: one of each per image and epoch, plus one per
    attack step of adversarial training (FGSM-RS: one)."""
    adversarial = metadata.get("adversarial_training") or {}
    passes = metadata["recipe"]["epochs"] * metadata["n_train"] * (1 + adversarial.get("steps", 0))
    return passes, passes


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "trained-models" / "study-cpu",
                        help="the CPU study's models (its seed-0 checkpoints of each arm)")
    parser.add_argument("--data-dir", default="datasets", help="main.py's --data-dir")
    parser.add_argument("--n", type=at_least_one, default=4, help="images counted per model (default 4)")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--tflops", type=float, nargs="+", default=[10.0, 30.0, 100.0],
                        help="assumed achieved fp32 rates of the GPU, TFLOP/s (default 10 30 100)")
    parser.add_argument("--threads", type=at_least_one, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = {"white-box": TEST_IMAGES, "query": 1000, "checks": 500, "clean": TEST_IMAGES}
    totals, baseline_median = {}, None
    for arm in args.arms:
        path = args.models_dir / DATASET / ARMS[arm]
        if not path.exists():
            print(f"no checkpoint {path}: train the CPU study's seed 0 first (python experiments/fashion_mnist.py)",
                  file=sys.stderr)
            sys.exit(2)
        model = load_model(path)
        x, y = checkpoint_test_set(model, args.data_dir)
        kwta = "kwta" in ARMS[arm]
        counter = PassCounter()
        handles = [counter.attach(model)]
        transfer = None
        if kwta:  # the transfer attack runs on the same-seed baseline: its passes count too
            transfer = load_model(args.models_dir / DATASET / ARMS["standard"])
            handles.append(counter.attach(transfer))
        evaluation = evaluate_model(model, x, y, 10, torch.device("cpu"), gpu_config(args.n, kwta),
                                    audit_reference=None if baseline_median is None
                                    else ("standard seed 0", baseline_median), transfer_source=transfer)
        for handle in handles:
            handle.remove()
        if arm == "standard":
            baseline_median = evaluation.minimal["linf"].median_correct
        flops = forward_flops(model, x.shape[1:])
        measures = {}
        for measure in sorted(set(counter.forward) | set(counter.backward)):
            kind = counter.kinds.get(measure, "white-box")
            scale = sizes[kind] / (len(x) if kind == "clean" else args.n)
            measures[measure] = (counter.forward[measure] * scale, counter.backward[measure] * scale, kind)
        forward, backward = training_passes(model.checkpoint_metadata)
        measures["training"] = (forward, backward, "training")
        if kwta:
            radii = len(evaluation.audit.radii) if evaluation.audit else 1
            bound, per_image = adaptive_bound(radii, sizes["query"])
            cpu_schedule = measures.pop("nes_adaptive", (0, 0, "query"))
            measures["nes_adaptive (full schedule, bound)"] = (bound, 0, "query")
            print(f"{arm}: NES adaptive at the CPU schedule made {cpu_schedule[0]:.3g} passes at full size; its full "
                  f"schedule's bound is {per_image:,} queries per image and radius ({radii} radii, 1,000 images)")
        totals[arm] = (measures, flops)
        print(f"\n{arm} ({ARMS[arm]}; {args.n} images counted, {len(evaluation.audit.radii) if evaluation.audit else 0}"
              f" audit radii; F = {flops / 1e6:.1f} MFLOP): full-size passes per model (forward / backward images)")
        for measure, (forward, backward, kind) in sorted(measures.items(), key=lambda item: -sum(item[1][:2])):
            print(f"  {measure:42s} {kind:9s} {forward:14,.0f} / {backward:14,.0f}")
    print(f"\nthe --gpu design: {len(ARMS)} arms x {SEEDS_PER_ARM} seeds; FLOPs = forward x F + backward x 2F "
          f"(F: one image's forward FLOPs)")
    cost = {arm: sum((forward + 2 * backward) * flops for forward, backward, _ in measures.values())
            for arm, (measures, flops) in totals.items()}
    grand = 0.0
    for arm in ARMS:
        counted = arm if arm in cost else next((other for other in cost if KIND[other] == KIND[arm]), None)
        if counted is None:
            print(f"  {arm:14s} not counted, and no arm of its kind ({KIND[arm]}) was: left out of the total")
            continue
        grand += cost[counted] * SEEDS_PER_ARM
        source = "counted" if counted == arm else f"as {counted} (not counted)"
        print(f"  {arm:14s} {cost[counted] / 1e15:8.2f} PFLOP per model, {cost[counted] * SEEDS_PER_ARM / 1e15:8.1f} "
              f"PFLOP for its {SEEDS_PER_ARM} seeds; {source}")
    rates = ", ".join(f"{grand / (rate * 1e12) / 3600:.1f} h at {rate:g} TFLOP/s" for rate in args.tflops)
    print(f"study_cost: the --gpu design needs {grand / 1e15:.0f} PFLOP: {rates} (assumed rates; {len(totals)} of "
          f"{len(ARMS)} arms counted on {args.n} images each)")


if __name__ == "__main__":
    run_main(main)
