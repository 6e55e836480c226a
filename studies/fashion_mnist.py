"""The redone Fashion-MNIST sparsity study (issue 29; docs/studies/fashion-mnist.md), declared before any of its results
was read; nothing was added or dropped because of a result.

    python studies/fashion_mnist.py                  # run it (about 6.2 h on a 2-core Intel Xeon; finished, committed)
    python studies/fashion_mnist.py --design         # its design and smallest detectable effect; run nothing
    python studies/fashion_mnist.py --print          # the plan: every task, what it waits for, the seed blocks
    python studies/fashion_mnist.py --tables         # its tables, comparisons.csv, figure 8 and time, from its records
    python studies/fashion_mnist.py --verdict-table  # the verdict table the README leads with
    python studies/fashion_mnist.py --machine-check-table   # the baseline retrained on the arms' CPU, against them
    python studies/fashion_mnist.py --dose-response [--tables]  # L1 and k-WTA at conv1 towards 90/95/99% zeros
    python studies/fashion_mnist.py --first-study --tables     # the first study's (withdrawn) tables
    python studies/fashion_mnist.py --gpu [--dataset cifar10-jpeg --data-dir datasets/cifar10-jpeg.tar.gz]

Every arm: the data set's converged recipe (all 60,000 images, 3 epochs, one-cycle; data/fashion_mnist.py), seeds
0-4. The positive control is FGSM adversarial training from a random start (Wong, Rice & Kolter 2020) at the
protocol's eps 0.1: the instrument must report it robust. FGSM-RS, not PGD-10: one PGD-10 step costs 7.9x a standard
one here, FGSM-RS 1.8x (bench/adv_train_throughput.py). Sparsity strengths are chosen by the zeros they reach in
calibration runs, never by robustness. Each arm is compared with its reference (``ModelSpec.reference``) seed by
seed, Holm over the arms (analysis.comparisons); each reference against itself first.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.comparisons import StudyResults, comparisons, is_null  # noqa: E402
from planner.study import ROOT, Arm, Study  # noqa: E402
from planner.study_cli import run_study  # noqa: E402
from common.errors import UsageError  # noqa: E402
from records.store import ResultStore  # noqa: E402
from vis.tables import check_table  # noqa: E402

AT = {"adv": "fgsm-rs", "adv_eps": 0.1}  # the positive control's training
# Strengths reaching about 95% zeros at the layer in calibration runs (1 epoch on 1,000 images per class, seed 0; zeros
# on the test set): conv1 λ = 1 gave 86.2%, λ = 3 97.0%, λ = 10 did not learn, so λ = 2; fc1 λ = 0.3 87.9%, λ = 1 95.2%.
L1_CONV1, L1_FC1 = 2.0, 1.0

STUDY = Study(
    title="the redone Fashion-MNIST study", dataset="fashion-mnist", seeds=tuple(range(5)),
    arms=(Arm("standard"),
          Arm("positive control: FGSM-RS adversarial training eps 0.1", **AT),
          Arm("L1 conv1 (about 95% zeros)", "l1", "conv1", L1_CONV1),
          Arm("L1 fc1 (about 95% zeros)", "l1", "fc1", L1_FC1),
          Arm("dropout conv1 p=0.3 (the one gain the first study reported)", "dropout", "conv1", 0.3),
          # 90% zeros by construction; attacked with its adaptive attacks (BPDA, sampled gradients, transfer)
          Arm("k-WTA conv1 gamma=0.1", "kwta", "conv1", 0.1),
          # L1, not k-WTA, on top of adversarial training: its gradients are exact (MeanSparse, Amini et al. 2024)
          Arm("L1 conv1 on adversarial training", "l1", "conv1", L1_CONV1, **AT)),
    store="docs/results/redone", models="trained-models/study-cpu",
    # fp32 channels_last, as the models were trained (each checkpoint records it), not the machine's measured choice:
    # the layout changes rounding, and a rerun must give the committed weights
    recipe={"amp": False}, channels_last=True,
    # sized for this CPU from the first evaluation's costs (evaluation.config.PRESETS); two evaluations at once on
    # one thread each gave 1.26x the throughput of one on two threads, every per-image eps* identical
    protocol="cpu-study", train_threads=2, eval_threads=1, workers=2,
)
# The same design at full size: 20 seeds, the whole test set, the full protocol (the audit and k-WTA's adaptive
# attacks, which run at its radii, on the first 1,000 images, declared before it ran); on Fashion-MNIST or the
# CIFAR-10 JPEG copy. No GPU has run it; bench/study_cost.py counts its work.
GPU = STUDY.with_(title="the redone study at full size (GPU)", seeds=tuple(range(20)), store="results/study-gpu",
                  models="trained-models/study-gpu", recipe={}, channels_last=None, protocol="full",
                  protocol_changes={"audit_n": 1000}, train_threads=None, eval_threads=None, workers=None,
                  also_on=("cifar10-jpeg",))
# The dose-response (issue 26): L1 and k-WTA at conv1 at strengths towards 90, 95 and 99% zeros, one model each
# (seed 0), against the baseline's five seeds. L1 λ = 0.3 and 6 were added after its training logs showed saturation
# (λ = 1, 2, 3: 95.2, 97.8, 98.2%), before any of its evaluations. A description of single models, never a verdict.
DOSE_RESPONSE = STUDY.with_(
    title="the dose-response at conv1", arms=(Arm("standard"), *(
        Arm(f"L1 conv1 λ={s:g}", "l1", "conv1", s, seeds=(0,)) for s in (0.3, 1.0, 2.0, 3.0, 6.0)), *(
        Arm(f"k-WTA conv1 γ={g:g}", "kwta", "conv1", g, seeds=(0,)) for g in (0.1, 0.05, 0.01))), compare=False)
# The first study (2 epochs on half the images, 1-3 seeds per arm), withdrawn (docs/studies/first-study.md): its
# records alone, every one of its store.
FIRST_STUDY = STUDY.with_(title="the first Fashion-MNIST study (withdrawn)", arms=None,
                          store="docs/results/first-study")
# The machine check, run after the results were read and not part of the design: the baseline's seeds retrained and
# evaluated on the Intel Xeon that ran the other arms (the design's baseline ran on an AMD EPYC).
MACHINE_CHECK = FIRST_STUDY.with_(title="the machine check", store="docs/results/machine-check")
RETRAINED = "standard, Intel Xeon"


def machine_check_table():
    """The machine check's table: the retrained baseline against itself and against the design's baseline, then
    each standard-trained arm of the design against it (one Holm family of those arms)."""
    design = StudyResults.of(STUDY.records())
    records = ResultStore(ROOT / MACHINE_CHECK.store).records(STUDY.dataset)
    if not records:
        raise UsageError(f"no machine-check results in {MACHINE_CHECK.store}/{STUDY.dataset}/; evaluate the standard "
                         f"baseline's seeds there with the commands in docs/studies/fashion-mnist.md "
                         f"(the machine check)")
    retrained = StudyResults.of(records).arms[0]
    baseline = design.arms[0]
    machines = [{**row, "arm": f"{RETRAINED} seeds 0-4", "reference": "standard (the design's, AMD EPYC)"}
                for row in comparisons([baseline, retrained], pairs=[(retrained, baseline)]) if not is_null(row)]
    sparse = [arm for arm in design.arms if arm.spec.adv is None and not arm.spec.is_baseline]
    within = comparisons([retrained, *sparse])
    nulls = [{**row, "arm": row["arm"].replace("standard seeds", f"{RETRAINED} seeds"), "reference": RETRAINED}
             for row in within if is_null(row)]
    arms = [{**row, "reference": RETRAINED} for row in within if not is_null(row)]
    return "\n".join(check_table(design.dataset, nulls + machines + arms)) + "\n"


if __name__ == "__main__":
    run_study(STUDY, parts={"gpu": GPU, "dose-response": DOSE_RESPONSE, "first-study": FIRST_STUDY},
              extra_tables={"machine-check-table": machine_check_table},
              figures_to="docs/figures/fashion_study_fig8_study_arms.png")
