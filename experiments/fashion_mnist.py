"""The Fashion-MNIST sparsity study (docs/studies/fashion-mnist.md): train, evaluate and plot every arm of the declared design,
then print the study's tables and total time and write its seed-level comparisons (``comparisons.csv``).

    python experiments/fashion_mnist.py          # the CPU study: results in docs/results/fashion-mnist/
    python experiments/fashion_mnist.py --design # print the design and its smallest detectable effect; run nothing
    python experiments/fashion_mnist.py --gpu    # the same design at full size: results/study-gpu/fashion-mnist/
    python experiments/fashion_mnist.py --tables # only the tables and comparisons.csv of this study's results, and its time
    python experiments/fashion_mnist.py --verdict-table  # only the README's verdict table of this study's results
    python experiments/fashion_mnist.py --first-study-tables  # the same of the first study (withdrawn, issue 29)
    python experiments/fashion_mnist.py --dose-response  # L1 and k-WTA at conv1 towards 90, 95, 99% zeros (seed 0)
    python experiments/fashion_mnist.py --gpu --dataset cifar10-jpeg --data-dir datasets/cifar10-jpeg.tar.gz
                                                 # the same design on CIFAR-10's images (the JPEG copy), full size

Every step is a ``main.py`` command, printed before it runs, so each can be rerun or changed by hand. Training runs
one model at a time, alone on every core; on the CPU the evaluations run two at a time between trainings (one
thread each; one per arm and seed, each after its own training and the same-seed baselines it reads), their output
in ``{models_dir}/logs/{train,eval}-stepNNN.log``. The study is
resumable: a finished checkpoint of the same recipe is not trained again, and a model whose result record is in
the results folder is kept as it is (neither retrained nor evaluated again), so stopping it and running the same
command again continues where it stopped, in this session or a later one, on this machine or a fresh one with
only the committed records (each record names the machine it ran on; a finished study reruns in minutes: only the
figures are redrawn). Delete a record to redo its model.

Design (issue 29), fixed in this file before any of its results is read; nothing is added or dropped because of a
result. Every arm is trained with the data set's converged recipe (Fashion-MNIST: all 60,000 images, 3 epochs,
one-cycle; data/fashion_mnist.py) and the same seeds:

- the standard baseline;
- the positive control: FGSM adversarial training from a random start (Wong, Rice & Kolter 2020) at eps 0.1, the
  protocol's eps. The instrument must report it robust; if it cannot, the evaluation is broken. FGSM-RS, not PGD-10:
  on this CPU one PGD-10 step costs 7.9x a standard one, FGSM-RS 1.8x (bench/adv_train_throughput.py);
- L1 at conv1 and at fc1, each at the strength that reached about 95% zeros at that layer in short calibration runs
  (docs/studies/fashion-mnist.md: strengths are chosen by the sparsity they reach, never by robustness);
- dropout p = 0.3 at conv1 (the one gain the first study reported);
- k-WTA gamma = 0.1 at conv1 (90% zeros by construction), attacked with its adaptive attacks (BPDA through the top-k,
  Tramer et al.'s sampled gradients, transfer from the same-seed baseline) inside eps*;
- sparsity on top of adversarial training: L1 at conv1 (the 95% strength) with the positive control's training.
  L1, not k-WTA, by design: its gradients are exact, so no adaptive attack is needed to read its eps*, and L1 at
  conv1 is the arm with the most direct dose (MeanSparse, Amini et al. 2024, sparsifies an adversarially trained
  model's activations).

Each arm is compared with the baseline trained the same way (the control with the standard baseline, the sparse arm
on adversarial training with the control), seed by seed (vis.comparisons, common.inference), Holm over the arms.
"""
import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import stats  # noqa: E402
from common.cli import run_main  # noqa: E402
from common.inference import detectable_effect  # noqa: E402
from evaluation.records import RecordFolder, load_records, read_record, write_summary_csv  # noqa: E402
from sparsity.variants import Variant  # noqa: E402
from vis.comparisons import comparisons, is_null, load_arms, write_csv  # noqa: E402
from vis.study import accuracy_table, check_table, load_study_tables, study_markdown, verdict_table  # noqa: E402
from vis.study_figure import plot_study_arms  # noqa: E402

DATASET = "fashion-mnist"
# Data sets the design runs on: the CPU study is sized for Fashion-MNIST; --gpu also runs it on the CIFAR-10 JPEG
# copy (--data-dir: the archive; on a device machine, carried as datasets/cifar10-jpeg.tar.gz, see bench/gpu_check.sh).
GPU_DATASETS = (DATASET, "cifar10-jpeg")
ADVERSARIAL = ("fgsm-rs", 0.1)  # the positive control's training: (method, eps)
# Strengths reaching about 95% zeros at the layer, chosen from calibration runs before the study (1 epoch on 1,000
# images per class, the converged recipe otherwise, seed 0; zeros on the test set): conv1 λ = 1 gave 86.2%, λ = 3
# 97.0%, λ = 10 did not learn (99.9%), so λ = 2 between them; fc1 λ = 0.3 gave 87.9%, λ = 1 95.2%, λ = 3 did not
# learn. The dose-response measures what λ = 1, 2, 3 reach at conv1 on the full recipe.
L1_CONV1 = 2.0
L1_FC1 = 1.0


@dataclass(frozen=True)
class Arm:
    """One arm of the design: a ``main.py`` selection (method folder, layer, strength, adversarial training)."""

    label: str
    method: str  # main.py --method: the results folder (the baselines are evaluated into every folder used)
    layer: str | None = None  # None: a baseline
    strength: float | None = None
    adversarial: tuple | None = None  # (name, eps) of --adv-train, or None: standard training

    def flags(self):
        chosen = (["--baseline-only"] if self.layer is None
                  else ["--no-baseline", "--layers", self.layer, "--strength", f"{self.strength:g}"])
        if self.adversarial:
            chosen += ["--adv-train", self.adversarial[0], "--adv-eps", f"{self.adversarial[1]:g}"]
        return chosen

    def variant(self, seed):
        """This arm's model of ``seed`` (the names of its checkpoint and its result record)."""
        adv, eps = self.adversarial or (None, None)
        if self.layer is None:
            return Variant.baseline(seed, adv, eps)
        return Variant(self.method, self.layer, float(self.strength), seed, adv, eps)


ARMS = (
    Arm("standard", "l1"),
    Arm("positive control: FGSM-RS adversarial training eps 0.1", "l1", adversarial=ADVERSARIAL),
    Arm("L1 conv1 (about 95% zeros)", "l1", "conv1", L1_CONV1),
    Arm("L1 fc1 (about 95% zeros)", "l1", "fc1", L1_FC1),
    Arm("dropout conv1 p=0.3", "dropout", "conv1", 0.3),
    Arm("k-WTA conv1 gamma=0.1", "kwta", "conv1", 0.1),
    Arm("L1 conv1 on adversarial training", "l1", "conv1", L1_CONV1, ADVERSARIAL),
)
# The dose-response (issue 26): L1 and k-WTA at conv1 at strengths towards 90%, 95% and 99% zeros, seed 0, on the
# same recipe and evaluation; figure 7 of each method folder draws them against the baseline's seed band. L1's
# sparsity saturates on the full recipe (its training logs, 2026-12-05, before any of its evaluations: λ = 1 95.2%,
# λ = 2 97.8%, λ = 3 98.2% zeros at conv1), so λ = 0.3 (towards 90%) and λ = 6 (towards 99%; λ = 10 did not learn in
# calibration) were added then, chosen by the sparsity they aim at, never by a robustness result.
DOSE_RESPONSE = (Arm("L1 conv1 dose", "l1", "conv1", 0.3), Arm("L1 conv1 dose", "l1", "conv1", 1.0),
                 Arm("L1 conv1 dose", "l1", "conv1", 2.0), Arm("L1 conv1 dose", "l1", "conv1", 3.0),
                 Arm("L1 conv1 dose", "l1", "conv1", 6.0), Arm("k-WTA conv1 dose", "kwta", "conv1", 0.1),
                 Arm("k-WTA conv1 dose", "kwta", "conv1", 0.05), Arm("k-WTA conv1 dose", "kwta", "conv1", 0.01))
DOSE_SEEDS = (0,)

# Seeds per arm, the same for every arm. The seed SD of the median eps* is the unit of the smallest detectable
# effect (common.inference.detectable_effect: 80% power, two-sided 5%, from simulated studies); --design prints it in
# eps units from the baseline's measured seed spread. 5 seeds per arm is the floor and what 8 hours of this
# CPU allows for 7 arms; the GPU variant runs 20.
CPU_SEEDS = tuple(range(5))
GPU_SEEDS = tuple(range(20))

# The CPU study. Clean accuracy and sparsity on all 10,000 test images; AutoAttack (standard) at eps 0.1 and eps*
# (L-inf: FAB as AutoAttack runs it for a minimum norm, 100 iterations, 2 restarts, FAB-T on the top 3 classes, and
# the APGD-20 bisection, every attack run folded in) on the first 50; the audit (AutoAttack at 0.5x, 1x and 1.5x the
# same-seed baseline's median eps*) on the first 10 of those; Square, NES and the adaptive NES on a seeded 10 with
# reduced query budgets. The sizes were set from the costs of the study's first evaluation (2026-12-05, standard
# seed 0 at the earlier sizes 100/20/20, stopped in its audit and redone at these; 2 threads, load 4-7): eps* 6.1 min
# for 100 images, the other attacks 0.5 min, the audit 15.7 min for its first radius alone (AutoAttack's whole
# ensemble on the 18 of 20 images still robust there). At those sizes the evaluation would take about 13 h (an
# adversarially trained model is robust on most images at every radius: about 40 min each) on top of about 6 h of
# training; halving the images and the audit roughly halves it. The study still exceeds the 8 h on this CPU:
# its training alone (35 models, the converged recipe) takes about 4.6 h on a quiet machine (its first 26 models
# recorded 6.4 h, load included); docs/benchmarks.md has the measured times.
CPU = {
    # The precision and memory layout are pinned to what the study's models were trained in (fp32, channels_last:
    # each checkpoint records it), not left to training.precision's probe, which picks the faster layout on the
    # machine at hand and, on a loaded machine, may pick the other one: the layout changes rounding, and so the
    # trained weights, and a rerun would not give the committed numbers.
    "recipe": ["--no-amp", "--channels-last"],
    "eval": ["--attacks", "pgd", "autoattack", "square", "nes", "--n-eval", "50", "--steps", "20",
             "--audit-n", "10", "--query-n", "10", "--square-queries", "1000", "--nes-modes", "untargeted",
             "--nes-momenta", "0.9", "--nes-samples", "50", "--nes-steps", "40", "--adaptive-steps", "20",
             "--adaptive-schedule", "10@0", "50@5", "200@10", "--minimal-norms", "linf", "--check-n", "50"],
    "models_dir": "trained-models/study-cpu",
    "results_dir": "docs/results",
    "threads": 2,
    # Evaluations run two at a time on one thread each: measured on this CPU (2026-12-05, the study's evaluation of
    # one standard model on 16 images), one evaluation took 197 s on 2 threads and two at once 312 s on 1 thread each,
    # 1.26x the throughput, with every per-image eps* identical. Training stays one model at a time on 2 threads.
    "eval_threads": 1,
    "eval_workers": 2,
    "seeds": CPU_SEEDS,
}
# The full protocol on a GPU: the same design and recipe, 20 seeds per arm, docs/usage.md's evaluation on the whole
# test set (AutoAttack standard on all of it, Square and NES on 1,000 images at full budgets, eps* in L-inf and L2
# with the full search and the adaptive attacks at Tramer et al.'s settings). No GPU has run it: its expected time
# (docs/benchmarks.md) is its work counted model pass by model pass (bench/study_cost.py) at an assumed GPU rate.
GPU = {
    "recipe": [],
    "eval": ["--attacks", "pgd", "autoattack", "square", "nes"],
    "models_dir": "trained-models/study-gpu",
    "results_dir": "results/study-gpu",
    "threads": None,
    "eval_threads": None,
    "eval_workers": 1,  # one GPU
    "seeds": GPU_SEEDS,
}
# The first study (2 epochs on half the images, 1-3 seeds per arm; its claims are withdrawn, docs/studies/first-study.md), kept
# apart so that nothing mixes the two.
FIRST_STUDY = "docs/results/first-study"
# The machine check, run after the CPU study's results were read and not part of its design or verdicts: the design's
# standard baseline was trained and evaluated on an AMD EPYC, its other standard-trained arms (all of dropout and L1
# fc1, 4 of 5 seeds of L1 conv1 and k-WTA) on an Intel Xeon; these are the baseline's seeds 0-4 retrained and
# evaluated there with the study's own commands.
MACHINE_CHECK = "docs/results/machine-check"
RETRAINED = "standard, Intel Xeon"
FIGURES = ("fig6_eps_star_per_layer", "fig5_robustness_curves", "fig7_eps_star_vs_sparsity")
STUDY_FIGURE = "fig8_study_arms"  # every arm beside its reference (vis/study_figure.py), written with the tables


def main_py(mode, method, setup, *flags):
    """The ``main.py`` command line of one step (every mode names the data set: the GPU folders may hold two)."""
    common = ["--mode", mode, "--method", method, "--dataset", dataset_of(setup)]
    if mode == "vis":
        return ["main.py", *common, "--results-dir", setup["results_dir"], *flags]
    threads = setup["eval_threads"] if mode == "eval" else setup["threads"]
    threads = ["--threads", str(threads)] if threads else []
    own = setup["recipe"] if mode == "train" else setup["eval"]
    data_dir = ["--data-dir", str(setup["data_dir"])] if setup.get("data_dir") else []
    return ["main.py", *common, *flags, *own, *threads, *data_dir,
            "--models-dir", setup["models_dir"]] + (["--results-dir", setup["results_dir"]] if mode == "eval" else [])


def dataset_of(setup):
    return setup.get("dataset", DATASET)


def run(command):
    """Run one ``main.py`` step in this Python; stop the study where a step fails."""
    print("$ python " + " ".join(command), flush=True)
    result = subprocess.run([sys.executable, *command], cwd=ROOT)
    if result.returncode != 0:
        print(f"study stopped: the step above exited {result.returncode}; fix it and rerun this command to continue",
              file=sys.stderr)
        sys.exit(result.returncode)


def seed_flags(values):
    return ["--seeds", *map(str, values)]


def methods_of(arms):
    return list(dict.fromkeys(arm.method for arm in arms))


@dataclass(frozen=True)
class Step:
    """One ``main.py`` command of the study, the steps (indices) that must finish before it starts, and its lane:
    a ``train`` step runs alone, ``eval`` steps up to the setup's workers at once (``run_steps``)."""

    command: list
    after: tuple = ()
    lane: str = "eval"
    model: tuple | None = None  # (arm, method folder, seed) of an evaluation


BASELINE = Arm("standard", "l1")


def kept_records(setup, arms=ARMS, seeds=None):
    """``{(arm, method folder, seed)}`` whose result record is already in the study's results folder. A record is
    the study's product and is kept as it is: its model is neither retrained nor evaluated again, whichever machine
    wrote it (checkpoints are not committed, so a later session on a fresh machine continues from the committed
    records; each record names its machine and its checkpoint's hash). Delete a record to redo its model."""
    results = ROOT / setup["results_dir"] / dataset_of(setup)
    return {(arm, method, seed) for arm in [BASELINE, *arms] for method in ([arm.method] if arm != BASELINE
                                                                            else methods_of([BASELINE, *arms]))
            for seed in seeds or setup["seeds"] if arm.variant(seed).results_path(results, method).is_file()}


def evaluation_steps(setup, arms=ARMS, seeds=None, trained=None, offset=0):
    """One evaluation per arm and seed, listed so that each comes after what it needs: the same-seed standard
    baseline in its method folder (the audit's radii and the transfer attack read it; evaluated in the first folder
    and copied into the others, so the copies wait for it), for the sparse arm on adversarial training the
    same-seed adversarially trained baseline (the arm's reference), and its own training step where ``trained``
    (``{(arm, seed): step index}``) names one. The steps' indices start at ``offset`` (after the training steps)."""
    steps, index = [], {}
    trained = trained or {}

    def add(arm, method, seed, *after):
        index[(arm, method, seed)] = offset + len(steps)
        own = (trained[(arm, seed)],) if (arm, seed) in trained else ()
        steps.append(Step(main_py("eval", method, setup, *arm.flags(), *seed_flags([seed])), own + tuple(after),
                          model=(arm, method, seed)))

    seeds = seeds or setup["seeds"]
    methods = methods_of([BASELINE, *arms])
    for method in methods:
        for seed in seeds:
            add(BASELINE, method, seed, *([] if method == methods[0] else [index[(BASELINE, methods[0], seed)]]))
    control = {arm.adversarial: arm for arm in arms if arm.layer is None and arm.adversarial}
    order = sorted((arm for arm in arms if arm != BASELINE), key=lambda arm: arm.adversarial is not None
                   and arm.layer is not None)  # the adversarially trained baseline before the arm built on it
    for arm in order:
        for seed in seeds:
            needs = [index[(BASELINE, arm.method, seed)]]
            if arm.layer is not None and arm.adversarial in control:
                needs.append(index[(control[arm.adversarial], control[arm.adversarial].method, seed)])
            add(arm, arm.method, seed, *needs)
    return steps


def training_commands(setup, arms=ARMS, seeds=None):
    """Training of every arm's declared seeds, the standard baseline first."""
    trained = [BASELINE] + [arm for arm in arms if arm != BASELINE]
    return [main_py("train", arm.method, setup, *arm.flags(), *seed_flags(seeds or setup["seeds"])) for arm in trained]


def study_commands(setup, arms=ARMS, seeds=None):
    """Every training, then every evaluation (``evaluation_steps``), in an order that runs them one at a time."""
    return training_commands(setup, arms, seeds) + [step.command for step in evaluation_steps(setup, arms, seeds)]


def has_kwta(arm):
    return arm.method == "kwta" and arm.layer is not None


def study_steps(setup, arms=ARMS, seeds=None, kept=frozenset()):
    """``(steps, done)``: one training per model (arm and seed), then every evaluation after its own training and
    the records it reads; ``done``: the indices of the evaluations whose record is ``kept`` (``kept_records``),
    never run. A kept model is not retrained, except the standard baseline of a seed whose k-WTA model is still to
    be evaluated: its transfer attack needs the baseline's checkpoint (trained again, on this machine; its kept
    record is not replaced)."""
    seeds = seeds or setup["seeds"]
    arms = [BASELINE] + [arm for arm in arms if arm != BASELINE]
    order = [(arm, seed) for arm in arms for seed in seeds if (arm, arm.method, seed) not in kept]
    surrogates = [(BASELINE, seed) for seed in seeds if (BASELINE, seed) not in order
                  and any(has_kwta(arm) and (arm, seed) in order for arm in arms)]
    first_kwta = next((i for i, (arm, _) in enumerate(order) if has_kwta(arm)), len(order))
    order[first_kwta:first_kwta] = surrogates  # trained when the k-WTA models that need them come
    steps, trained = [], {}
    for arm, seed in order:
        trained[(arm, seed)] = len(steps)
        steps.append(Step(main_py("train", arm.method, setup, *arm.flags(), *seed_flags([seed])), lane="train"))
    steps += evaluation_steps(setup, arms, seeds, trained, offset=len(steps))
    return steps, {i for i, step in enumerate(steps) if step.model in kept}


def figure_commands(setup, arms=ARMS):
    return [main_py("vis", method, setup) for method in methods_of(arms)]


def run_steps(steps, workers, log_dir, done=()):
    """Run ``steps``, each once the steps it needs have finished (in list order among those ready), except those in
    ``done`` (counted as finished): evaluations up to ``workers`` at once, a ``train`` step alone (it runs on every
    core: measured 2026-12-05 on this 2-core Intel Xeon, an FGSM-RS training at 2 threads ran 11 batches/s alone
    and 2.4 beside a one-thread evaluation), started when fewer than ``workers`` evaluations are ready, so that
    trainings and pairs of evaluations alternate. With more than one worker each step's output goes to its own log
    in ``log_dir``. Stops the study where a step fails, once the steps already running have ended."""
    done = set(done)
    if workers == 1:
        for i, step in enumerate(steps):
            if i not in done:
                run(step.command)
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    running, pending = {}, [i for i in range(len(steps)) if i not in done]

    def log_of(i):
        return log_dir / f"{steps[i].lane}-step{i:03d}.log"

    def start(i):
        pending.remove(i)
        print(f"$ python {' '.join(steps[i].command)}  (step {i + 1} of {len(steps)}, log {log_of(i)})", flush=True)
        running[pool.submit(run_logged, steps[i].command, log_of(i))] = i

    with ThreadPoolExecutor(workers) as pool:
        while pending or running:
            ready = [i for i in pending if set(steps[i].after) <= done]
            evaluations = [i for i in ready if steps[i].lane != "train"]
            trainings = [i for i in ready if steps[i].lane == "train"]
            if not running and trainings and len(evaluations) < workers:
                start(trainings[0])  # alone: it uses every core, and a core shared with an evaluation stalls it
            elif not any(steps[i].lane == "train" for i in running.values()):
                for i in evaluations[:workers - len(running)]:
                    start(i)
            if not running:
                sys.exit(f"study stopped: steps {', '.join(str(i + 1) for i in pending)} wait for steps that never run")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i = running.pop(future)
                status = future.result()
                if status != 0:
                    wait(running)
                    print(f"study stopped: step {i + 1} exited {status} (log {log_of(i)}); "
                          "fix it and rerun this command to continue", file=sys.stderr)
                    sys.exit(status)
                done.add(i)
                print(f"step {i + 1} of {len(steps)} done ({len(done)} finished)", flush=True)


def run_logged(command, log):
    with open(log, "w") as out:
        return subprocess.run([sys.executable, *command], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode


def copy_kept_baselines(setup, arms, seeds, kept):
    """Copy each kept standard baseline record of the first method folder into the other folders that lack it (its
    checkpoint may be on another machine, and the copy main.py makes needs it); returns ``kept`` with the copies."""
    methods = methods_of([BASELINE, *arms])
    results = ROOT / setup["results_dir"] / dataset_of(setup)
    kept = set(kept)
    for seed in seeds or setup["seeds"]:
        if (BASELINE, methods[0], seed) not in kept:
            continue
        variant = BASELINE.variant(seed)
        record = read_record(variant.results_path(results, methods[0]), methods[0])
        for method in methods[1:]:
            if (BASELINE, method, seed) not in kept:
                folder = RecordFolder(results / method, method, dataset=dataset_of(setup))
                folder.write(replace(record, path=variant.results_path(results, method), method=method))
                folder.write_summary()
                print(f"copied {variant.name}'s kept record from {methods[0]}/ into {method}/", flush=True)
                kept.add((BASELINE, method, seed))
    return kept


def study(setup, arms=ARMS, seeds=None):
    kept = copy_kept_baselines(setup, arms, seeds, kept_records(setup, arms, seeds))
    steps, done = study_steps(setup, arms, seeds, kept)
    if done:
        print(f"kept: {len(done)} evaluations whose records are already in {setup['results_dir']} (not redone; "
              "delete a record to redo its model)", flush=True)
    run_steps(steps, setup["eval_workers"], ROOT / setup["models_dir"] / "logs", done)
    # evaluations that ran at once rewrote a folder's summary.csv each from what it had seen: once more from all
    for method in methods_of([BASELINE, *arms]):
        folder = ROOT / setup["results_dir"] / dataset_of(setup) / method
        if folder.is_dir():
            write_summary_csv(folder, method, dataset=dataset_of(setup))
    for command in figure_commands(setup, arms):
        run(command)


def copy_figures(results_dir, arms=ARMS):
    """The study page's figures of the CPU study, into docs/figures (the results folder's figures are not committed)."""
    for method in methods_of(arms):
        for stem in FIGURES:
            source = ROOT / results_dir / DATASET / method / f"{stem}.png"
            if source.exists():
                shutil.copyfile(source, ROOT / "docs" / "figures" / f"fashion_study_{method}_{stem}.png")


def baseline_seed_sd(results_dir, dataset=DATASET):
    """``(SD, n, source)`` of the standard baseline's per-seed median eps* (correct images) in ``results_dir``, else
    in the first study's files (a stand-in, labelled, until two of this study's baseline seeds exist), else None."""
    for folder, source in ((results_dir, "this study's"), (FIRST_STUDY, "the first study's (under-fit) stand-in")):
        select = design_of(folder)
        study = load_study_tables(ROOT / folder, dataset, methods_of(ARMS), select) \
            if (ROOT / folder / dataset).is_dir() else None
        values = [v for v in (study.baseline.values["eps_star_correct"] if study and study.baseline else ())
                  if v is not None]
        if len(values) >= 2:
            return stats.sample_std(values), len(values), source
    return None


def design_text(setup, spread=None):
    """The design as run: arms, seeds, sizes and the smallest detectable effect on the median eps*."""
    seeds = setup["seeds"]
    lines = [f"design: {len(ARMS)} arms x {len(seeds)} seeds ({len(ARMS) * len(seeds)} models) on {dataset_of(setup)}, "
             f"seeds {', '.join(map(str, seeds))}"]
    lines += [f"  {arm.label}: main.py --method {arm.method} {' '.join(arm.flags())}" for arm in ARMS]
    effect = detectable_effect(len(seeds))
    holm = detectable_effect(len(seeds), n_arms=len(ARMS) - 1)
    where = ""
    if spread:
        sd, n, source = spread
        where = (f"; in eps: {effect * sd:.4f} and {holm * sd:.4f}, from the seed SD {sd:.4f} of {source} {n} "
                 f"baseline seeds")
    lines.append(f"smallest detectable effect on the median eps* (80% power, 5%, t-test): {effect:.1f} seed SDs for "
                 f"one comparison, {holm:.1f} under Holm over {len(ARMS) - 1} arms{where}; the procedure itself "
                 f"(permutation p and interval, simulated in tests/test_inference.py at 5 seeds) detects 2.4 seed "
                 f"SDs in 81% of studies and 2.0 in 68%")
    return "\n".join(lines)


def in_design(variant, arms=ARMS, seeds=CPU_SEEDS):
    """Whether a record's variant is one of the declared design's models (not a dose-response or a --quick one)."""
    def selection(arm):
        adversarial = arm.adversarial or (None, None)
        return ("standard" if arm.layer is None else arm.method, arm.layer, arm.strength, *adversarial)

    chosen = {selection(arm) for arm in arms}
    strength = None if variant.layer is None else variant.strength
    return variant.seed in seeds and (variant.method, variant.layer, strength, variant.adv, variant.adv_eps) in chosen


def in_dose_response(variant):
    """Whether a record's variant is one of the dose-response's models or the standard baseline's design seeds (the
    band its figure and table compare with)."""
    if variant.is_baseline and variant.adv is None:
        return variant.seed in CPU_SEEDS
    return in_design(variant, DOSE_RESPONSE, DOSE_SEEDS)


def design_of(results_dir):
    """The records a results folder's tables may use: the CPU study's declared design (its folders also hold the
    dose-response, which must join no arm and no Holm family), the GPU study's design with its seeds, everything in
    the first study's."""
    if results_dir == FIRST_STUDY:
        return None
    seeds = GPU_SEEDS if results_dir == GPU["results_dir"] else CPU_SEEDS
    return lambda variant: in_design(variant, ARMS, seeds)


def design_records(results_dir, dataset=DATASET, arms=ARMS, seeds=CPU_SEEDS):
    """``{checkpoint hash: record}``: each of the design's evaluated models once (the baseline's record is copied
    into every method folder)."""
    models = {}
    for method in methods_of(arms):
        folder = ROOT / results_dir / dataset / method
        for record in load_records(folder, method, dataset=dataset) if folder.is_dir() else ():
            if in_design(record.variant, arms, seeds):
                models.setdefault(record.checkpoint.sha256, record)
    return models


def study_time(results_dir, dataset=DATASET, arms=ARMS, seeds=CPU_SEEDS):
    """``(models, training s, evaluation s)`` of the design's evaluated models, each once, training as its checkpoint
    recorded it, evaluation as the record's timed parts (loading the model and the data not counted). Wall times:
    they include whatever else ran on the machine at the time."""
    models = design_records(results_dir, dataset, arms, seeds)
    training = sum(record.checkpoint.metadata.get("train_seconds") or 0 for record in models.values())
    return len(models), training, sum(sum(record.timings.values()) for record in models.values())


def time_text(results_dir, dataset=DATASET):
    models, training, evaluation = study_time(results_dir, dataset)
    expected = len(ARMS) * len(CPU_SEEDS)
    workers = CPU["eval_workers"]
    return (f"study time: {models} of the design's {expected} models evaluated; training {training / 3600:.1f} h, "
            f"evaluation {evaluation / 3600:.1f} h summed over the models (the records' timed parts; {workers} ran at "
            f"once, so about {evaluation / workers / 3600:.1f} h of wall time), total about "
            f"{(training + evaluation / workers) / 3600:.1f} h of wall time; "
            + machines_text(design_records(results_dir, dataset).values()))


def machines_text(records):
    """Which machines evaluated the models: a study continued on a fresh machine from its committed records mixes
    machines, and each model's numbers reproduce on the kind of CPU its record names (common.machine)."""
    counts = {}
    for record in records:
        machine = record.machine
        name = f"{machine['cpu']} ({machine['cpu_capability']})" if machine else "not recorded"
        counts[name] = counts.get(name, 0) + 1
    return "evaluated on: " + ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def load_design(results_dir, dataset=DATASET):
    """The ``Study`` of ``results_dir``'s declared design; exit 2 with one line where it has no results."""
    study = load_study_tables(ROOT / results_dir, dataset, ["l1", "dropout", "kwta"], design_of(results_dir))
    if study is None:
        print(f"no study results in {results_dir}/{dataset}/; run python experiments/fashion_mnist.py first",
              file=sys.stderr)
        sys.exit(2)
    return study


def verdicts(results_dir=None, dataset=DATASET):
    """The README's verdict table (every comparison, each baseline against itself first) of the CPU study's
    committed results; reads them only (no comparisons.csv, no figure)."""
    return "\n".join(verdict_table(load_design(results_dir or CPU["results_dir"], dataset))) + "\n"


def tables(results_dir, dataset=DATASET):
    """The study tables of ``results_dir``; writes its ``comparisons.csv`` beside the method folders."""
    study = load_design(results_dir, dataset)
    path = write_csv(ROOT / results_dir / dataset, study.rows)
    judged = [row["verdict"] for row in study.rows if row["statistic"] == "eps_star_correct" and not is_null(row)]
    counts = ", ".join(f"{judged.count(v)} {v}" for v in dict.fromkeys(sorted(judged)))
    print(f"comparisons: {len(study.rows)} rows in {path.relative_to(ROOT)}; median eps* of {len(judged)} arms: "
          f"{counts}", file=sys.stderr)
    figure = plot_study_arms(study, ROOT / results_dir / dataset / STUDY_FIGURE)
    if results_dir == CPU["results_dir"]:
        print(time_text(results_dir, dataset), file=sys.stderr)
        if figure:  # the study page's copy (the results folder's figures are not committed)
            shutil.copyfile(figure[0], ROOT / "docs" / "figures" / f"fashion_study_{STUDY_FIGURE}.png")
    return study_markdown(study)


def machine_check_table(dataset=DATASET):
    """The machine check's table: the standard baseline retrained on the Intel Xeon against itself (its nulls) and
    against the design's baseline (AMD EPYC), then each of the design's standard-trained arms against it (one Holm
    family of those arms, not the study's six)."""
    study = load_design(CPU["results_dir"], dataset)
    retrained, _ = load_arms(ROOT / MACHINE_CHECK, dataset, ["l1"])
    if retrained is None:
        print(f"no machine-check results in {MACHINE_CHECK}/{dataset}/l1/; evaluate the standard baseline's seeds "
              f"there with the commands in docs/studies/fashion-mnist.md (the machine check)", file=sys.stderr)
        sys.exit(2)
    machines = [{**row, "arm": f"{RETRAINED} seeds 0-4", "reference": "standard (the design's, AMD EPYC)"}
                for row in comparisons(study.baseline, [retrained]) if not is_null(row)]
    within = comparisons(retrained, [arm for arm in study.arms if arm.adv is None])
    nulls = [{**row, "arm": row["arm"].replace("standard seeds", f"{RETRAINED} seeds"), "reference": RETRAINED}
             for row in within if is_null(row)]
    arms = [{**row, "reference": RETRAINED} for row in within if not is_null(row)]
    return "\n".join(check_table(study.dataset, nulls + machines + arms)) + "\n"


def dose_tables(results_dir=CPU["results_dir"], dataset=DATASET):
    """The dose-response's table (issue 26): the standard baseline's design seeds, then each dose model (seed 0):
    clean accuracy, zeros at conv1 against the baseline's, median eps* over correct images, AutoAttack. A description
    of single models: its comparison rows (one seed against five) are never a verdict and are not printed."""
    study = load_study_tables(ROOT / results_dir, dataset, methods_of(DOSE_RESPONSE), in_dose_response)
    if study is None or study.baseline is None:
        print(f"no dose-response results in {results_dir}/{dataset}/; run python experiments/fashion_mnist.py "
              f"--dose-response first", file=sys.stderr)
        sys.exit(2)
    return "\n".join(accuracy_table(study)) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--gpu", action="store_true", help="the same design at full size (needs a GPU)")
    choice.add_argument("--tables", action="store_true", help="only print the tables of the CPU study's results")
    choice.add_argument("--verdict-table", action="store_true",
                        help="only print the README's verdict table of the CPU study's results")
    choice.add_argument("--first-study-tables", action="store_true",
                        help="only print the tables of the first study's results (withdrawn; docs/results/first-study)")
    choice.add_argument("--dose-response", action="store_true",
                        help="L1 and k-WTA at conv1 towards 90/95/99%% zeros, seed 0 (after the baseline's seeds)")
    choice.add_argument("--dose-response-tables", action="store_true",
                        help="only print the dose-response's table from the CPU study's results")
    choice.add_argument("--machine-check-table", action="store_true",
                        help="only print the machine check's table (the standard baseline retrained on the CPU that ran "
                             "the other arms), from docs/results/machine-check")
    parser.add_argument("--design", action="store_true", help="print the design and its detectable effect; run nothing")
    parser.add_argument("--dataset", choices=GPU_DATASETS, default=DATASET,
                        help=f"with --gpu: the data set (default {DATASET}; the CPU study is sized for it alone)")
    parser.add_argument("--data-dir", type=Path,
                        help="main.py's --data-dir (cifar10-jpeg: its archive, e.g. datasets/cifar10-jpeg.tar.gz)")
    args = parser.parse_args(argv)
    if args.dataset != DATASET and not args.gpu:
        parser.error(f"--dataset {args.dataset} needs --gpu: the CPU study's recipe is sized for {DATASET}")
    if args.dose_response_tables:
        print(dose_tables(), end="")
        return
    if args.machine_check_table:
        print(machine_check_table(), end="")
        return
    if args.verdict_table:
        print(verdicts(), end="")
        return
    if args.tables or args.first_study_tables:
        print(tables(FIRST_STUDY if args.first_study_tables else CPU["results_dir"]), end="")
        return
    setup = {**(GPU if args.gpu else CPU), "dataset": args.dataset,
             "data_dir": args.data_dir.resolve() if args.data_dir else None}
    print(design_text(setup, baseline_seed_sd(setup["results_dir"], args.dataset)), flush=True)
    if args.design:
        return
    started = time.perf_counter()
    arms, seeds = (DOSE_RESPONSE, DOSE_SEEDS) if args.dose_response else (ARMS, None)
    try:
        study(setup, arms, seeds)
    except KeyboardInterrupt:
        print("study interrupted: what finished is kept; rerun the same command to continue", file=sys.stderr)
        sys.exit(130)
    if not args.gpu:
        copy_figures(setup["results_dir"], ARMS + DOSE_RESPONSE)
    if args.dose_response:
        print(dose_tables(setup["results_dir"], args.dataset))
    else:
        print(tables(setup["results_dir"], args.dataset))
    print(f"study: done in {(time.perf_counter() - started) / 60:.1f} min; results in "
          f"{setup['results_dir']}/{args.dataset}/ (one folder per method), checkpoints in {setup['models_dir']}/")


if __name__ == "__main__":
    run_main(main)  # a bad result file: one line and exit 2, no traceback
