"""The --gpu study's expected time, from counted work: no GPU has run this project, so its time is the work its design
needs, counted here on a CPU, divided by a GPU's rate, stated as an assumption.

(a) The design is the study's own declaration (studies/fashion_mnist.py's GPU: its arms, 20 seeds, the full protocol
    with its declared subsets). Each arm's evaluation cost is that of its kind, counted on one model of the kind:
    standard training (the standard baseline), adversarial training (the positive control), a method that masks
    gradients (k-WTA: its adaptive attacks and surrogate).
(b) Counted: every image through the model, forward and input-gradient backward (bench/passes.py), per measure of
    one evaluation at the study's protocol on the first N test images (every counted image also in the query subset,
    the audit and the checks), scaled to the measure's images at full size: the white-box attacks and eps* on every
    test image, the query-based attacks, the adaptive attacks and the audit on their declared subsets, the checks on
    theirs; clean accuracy is counted at full size already.
(c) NES adaptive at Tramer et al.'s schedule (up to 2.4 million queries per image and radius) cannot run on a CPU: it
    is counted at the CPU study's short schedule for the images it attacks (those nothing broke at its radius before
    it, measured), and its full-size work is the schedule's bound on those images (every one robust to its last step).
(d) FLOPs: a forward pass of one image is F (torch.utils.flop_counter on the model); an input-gradient backward
    costs about F more (the gradient with respect to each layer's input; no parameter gradient: the attacks ask for
    none); a training step 3F per image (forward, input and weight gradients). Hours at the assumed achieved fp32
    rates of --tflops (the evaluation runs in fp32, TF32 off: evaluation/model.py).

    python bench/study_cost.py --models-dir DIR [--n 4] [--tflops 10 30 100] [--threads 1]

DIR: the three checkpoints bench/eval_cost.py uses (its docstring trains them). Takes about half an hour on one thread.
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the evaluation's progress bars would bury the result (before torch)
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attacks.nes import sample_schedule  # noqa: E402
from bench.passes import PassCounter  # noqa: E402
from common.cli import at_least_one, run_main  # noqa: E402
from evaluation.model import Baseline, ModelEvaluation  # noqa: E402
from studies.fashion_mnist import GPU  # noqa: E402
from training.checkpoint import checkpoint_test_set, load_model  # noqa: E402

CPU_ADAPTIVE = {"adaptive_steps": 20, "adaptive_schedule": ((0, 10), (5, 50), (10, 200))}  # the CPU study's


def kind_of(spec):
    return "masking" if spec.masks_gradients else "adversarial" if spec.adv else "standard"


def counted_spec(study, kind):
    """The model of ``kind`` that is counted: seed 0 of the first arm of that kind."""
    return next(spec for spec in study.specs() if spec.seed == 0 and kind_of(spec) == kind)


def full_size(protocol, measure, test_images):
    """The images ``measure`` (a timed part of the evaluation) attacks at full size."""
    name = measure.removesuffix("_s")
    if name == "clean":
        return None  # counted at full size
    if name == "audit":
        return protocol.audit_n or test_images
    if name == "checks":
        return min(protocol.check_n, test_images)
    query = name in ("square", "nes_adaptive") or name.startswith("nes_")
    return min(protocol.query_n, test_images) if query else test_images


def nes_adaptive_bound(protocol):
    """Queries per image and radius of NES adaptive at the protocol's schedule where the image stays robust."""
    settings = protocol.settings_of("nes_adaptive")
    schedule = sample_schedule(settings.schedule)
    return 2 + sum(1 + 2 * max(pairs for start, pairs in schedule if start <= step) for step in range(settings.steps))


def forward_flops(model, image_shape):
    x = torch.zeros(8, *image_shape)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 8


def count(study, spec, models_dir, n, reference):
    """``({measure: work in F at full size}, F, the evaluation)`` of one model of the study's design."""
    model = load_model(spec.checkpoint_path(models_dir))
    x, y = checkpoint_test_set(model, ROOT / "datasets")
    setup = study.setup(ROOT / "datasets")
    protocol = setup.protocol.with_options(n_eval=n, query_n=n, audit_n=n, check_n=n, **CPU_ADAPTIVE)
    surrogate = load_model(spec.surrogate.checkpoint_path(models_dir)) if spec.surrogate else None
    counter = PassCounter(model, ModelEvaluation)
    if surrogate is not None:  # the transfer attack's passes through its source count too
        source = PassCounter(surrogate, ModelEvaluation)
    evaluation = ModelEvaluation(model, spec, (x, y), protocol, Baseline(reference, surrogate)).run()
    work = {}
    for measure in counter.measures():
        images = full_size(setup.protocol, measure, len(x))
        done = counter.work(measure) + (source.work(measure) if surrogate is not None else 0)
        work[measure] = done * (1 if images is None else images / n)
    if spec.masks_gradients and "nes_adaptive_s" in work:
        runs = [run for run in evaluation.audit.adaptive if run.attack == "nes_adaptive"]
        attacked = sum(run.n_attacked for run in runs) / n  # per counted image, over the radii
        query = min(setup.protocol.query_n, len(x))
        work["nes_adaptive_s (full schedule, bound)"] = attacked * query * nes_adaptive_bound(setup.protocol)
        del work["nes_adaptive_s"]
    metadata = model.checkpoint_metadata
    steps = 1 + ((metadata.get("adversarial_training") or {}).get("steps") or 0)
    work["training"] = 3 * metadata["recipe"]["epochs"] * metadata["n_train"] * steps
    return work, forward_flops(model, x.shape[1:]), evaluation


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--n", type=at_least_one, default=4, help="images counted per model (default 4)")
    parser.add_argument("--tflops", type=float, nargs="+", default=[10.0, 30.0, 100.0])
    parser.add_argument("--threads", type=at_least_one, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    study = GPU
    per_kind, reference = {}, None
    for kind in ("standard", "adversarial", "masking"):
        spec = counted_spec(study, kind)
        work, flops, evaluation = count(study, spec, args.models_dir, args.n, reference)
        if kind == "standard":
            reference = (f"{spec.name} median eps* (correct images)", evaluation.minimal["linf"].median_correct)
        per_kind[kind] = sum(work.values()) * flops
        print(f"\n{kind}: {spec.name} ({args.n} images counted; F = {flops / 1e6:.1f} MFLOP): work per model at "
              f"full size (F)")
        for measure, value in sorted(work.items(), key=lambda item: -item[1]):
            print(f"  {measure:40s} {value:16,.0f}")
    print(f"\nthe --gpu design ({study.title}): {len(study.arms)} arms x {len(study.seeds)} seeds on {study.dataset}, "
          f"protocol {study.protocol} with {study.protocol_changes}")
    grand = 0.0
    for arm in study.arms:
        kind = kind_of(arm.spec(0, study.dataset))
        grand += per_kind[kind] * len(study.seeds)
        print(f"  {arm.label:60s} {per_kind[kind] / 1e15:7.2f} PFLOP per model ({kind}), "
              f"{per_kind[kind] * len(study.seeds) / 1e15:8.1f} PFLOP for its seeds")
    rates = ", ".join(f"{grand / (rate * 1e12) / 3600:.1f} h at {rate:g} TFLOP/s" for rate in args.tflops)
    print(f"study_cost: the --gpu design needs {grand / 1e18:.2f} EFLOP: {rates} (assumed rates; each kind counted "
          f"on {args.n} images of one model)")


if __name__ == "__main__":
    run_main(main)
