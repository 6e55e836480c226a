"""The evaluation's cost, today's search against a reference commit's, in one run on this machine (issue 42).

Three Fashion-MNIST models, the kinds of the study: the standard baseline, the positive control (FGSM-RS adversarial
training at eps 0.1) and k-WTA at conv1 (gamma 0.1, its adaptive attacks against the baseline as surrogate). Each is
evaluated twice on the same first N test images with the CPU study's protocol (evaluation.config's "cpu-study", N
images): by the code of ``--reference`` (a git worktree of that commit, made here) and by this tree's, one after the
other, each in a process of its own on ``--threads`` threads. Both evaluations of the control and of k-WTA scale their
audit with the same reference median eps* (the reference code's baseline's). Printed per model and measure: its work
in passes per image (forward + input-gradient backward, bench/passes.py), seconds per 100 images, and the ratio
new / reference; then the whole evaluation's time ratio, and on every image the new eps* against the reference's:
never above it by more than the bisection's tolerance (evaluation.minimal.TOLERANCE), or the benchmark fails.

    python bench/eval_cost.py --models-dir DIR [--n 20] [--reference COMMIT] [--threads 1]

DIR holds the three checkpoints as the study trains them (ModelSpec paths under DIR/fashion-mnist/simple_cnn/):
    python main.py --mode train --dataset fashion-mnist --baseline-only --no-amp --channels-last --models-dir DIR
    python main.py --mode train --dataset fashion-mnist --baseline-only --adv-train fgsm-rs --adv-eps 0.1 --no-amp \\
        --channels-last --models-dir DIR
    python main.py --mode train --dataset fashion-mnist --method kwta --layers conv1 --strength 0.1 --no-baseline \\
        --no-amp --channels-last --models-dir DIR
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE = "dd31c2b"  # the last commit before issue 42's changes to the evaluation
MODELS = {  # name -> (the spec's constructor arguments)
    "standard": ("standard", None, 0.0, 0, None, None),
    "fgsm-rs AT": ("standard", None, 0.0, 0, "fgsm-rs", 0.1),
    "k-WTA": ("kwta", "conv1", 0.1, 0, None, None),
}


def evaluate_with(tree, checkpoint_dir, model, n, reference):
    """One evaluation by the code in ``tree`` (this function runs in a process of its own): per measure its
    seconds and passes, the per-image eps*, and the model's median eps* over its correct images."""
    sys.path.insert(0, str(tree))
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    from bench.passes import PassCounter
    from evaluation.config import protocol
    from evaluation.minimal import median_correct
    from evaluation.model import Baseline, ModelEvaluation
    from models.spec import ModelSpec
    from training.checkpoint import checkpoint_test_set, load_model

    spec = ModelSpec(*MODELS[model], dataset="fashion-mnist")
    net = load_model(spec.checkpoint_path(checkpoint_dir))
    x, y = checkpoint_test_set(net, ROOT / "datasets")
    surrogate = load_model(spec.baseline.checkpoint_path(checkpoint_dir)) if spec.masks_gradients else None
    config = protocol("cpu-study", dataset="fashion-mnist", n_eval=n, check_n=n)
    counter = PassCounter(net, ModelEvaluation)
    evaluation = ModelEvaluation(net, spec, (x, y), config, Baseline(reference, surrogate)).run()
    eps_star = evaluation.minimal["linf"].eps_star
    values = torch.tensor([float("inf") if v is None else v for v in eps_star], dtype=torch.float64)
    return {"seconds": evaluation.timings, "work": {m: counter.work(m) for m in counter.measures()},
            "eps_star": [v for v in eps_star], "median": float(median_correct(values))}


def run_worker(tree, checkpoint_dir, model, n, reference, threads):
    """``evaluate_with`` in a fresh process on ``threads`` threads; its result read back."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        code = (f"import json, sys, torch; sys.path.insert(0, {str(ROOT)!r}); torch.set_num_threads({threads}); "
                f"from bench.eval_cost import evaluate_with; json.dump(evaluate_with({str(tree)!r}, "
                f"{str(checkpoint_dir)!r}, {model!r}, {n}, {reference!r}), open({out.name!r}, 'w'))")
        subprocess.run([sys.executable, "-c", code], check=True, cwd=tree)
        return json.loads(Path(out.name).read_text())


def table(model, old, new, n):
    lines = [f"{model} ({n} images): measure, work per image (F) reference -> new, seconds per 100 images "
             f"reference -> new, time ratio"]
    for measure in dict.fromkeys([*old["seconds"], *new["seconds"]]):
        before, after = old["seconds"].get(measure, 0.0), new["seconds"].get(measure, 0.0)
        work = (old["work"].get(measure, 0) / n, new["work"].get(measure, 0) / n)
        lines.append(f"  {measure:<28} {work[0]:9.0f} -> {work[1]:9.0f} F   {100 * before / n:8.1f} -> "
                     f"{100 * after / n:8.1f} s   " + (f"{after / before:.2f}" if before else "-"))
    before, after = sum(old["seconds"].values()), sum(new["seconds"].values())
    lines.append(f"  {'whole evaluation':<28} {sum(old['work'].values()) / n:9.0f} -> "
                 f"{sum(new['work'].values()) / n:9.0f} F   {100 * before / n:8.1f} -> {100 * after / n:8.1f} s   "
                 f"ratio {after / before:.2f}")
    return lines, after / before


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=20, help="test images per model (default 20)")
    parser.add_argument("--reference", default=REFERENCE, help=f"the commit to compare with (default {REFERENCE})")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    from evaluation.minimal import TOLERANCE

    with tempfile.TemporaryDirectory() as worktree:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", worktree, args.reference],
                       check=True, capture_output=True)
        try:
            results, reference = {}, None
            for model in MODELS:
                old = run_worker(worktree, args.models_dir.resolve(), model, args.n, reference, args.threads)
                new = run_worker(ROOT, args.models_dir.resolve(), model, args.n, reference, args.threads)
                if model == "standard":  # the others' audits scale with the baseline's median eps*
                    reference = ("standard_seed0 median eps* (correct images)", old["median"])
                results[model] = old, new
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", worktree], capture_output=True)
    worse = []
    for model, (old, new) in results.items():
        lines, ratio = table(model, old, new, args.n)
        print("\n".join(lines))
        for index, (a, b) in enumerate(zip(old["eps_star"], new["eps_star"])):
            a, b = (float("inf") if v is None else v for v in (a, b))
            if b > a * (1 + TOLERANCE):
                worse.append(f"{model} image {index}: eps* {b:.5g} against {a:.5g}")
        print("  eps* per image, reference -> new: " + ", ".join(
            f"{'-' if a is None else f'{a:.4g}'} -> {'-' if b is None else f'{b:.4g}'}"
            for a, b in zip(old["eps_star"], new["eps_star"])))
    print(f"eval_cost: {len(worse)} images whose new eps* exceeds the reference's by more than {TOLERANCE:.0%}"
          + (": " + "; ".join(worse) if worse else ""))
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
