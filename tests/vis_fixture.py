"""Result files in the TEAM.md schema (schema_version 1), made up for the vis tests.

The numbers follow the shape real CIFAR-10 results take (PGD almost always
succeeds, NES needs hundreds to thousands of queries, strong regularisation
raises sparsity and costs accuracy) so that rendered figures can be inspected.
"""
import json
import math
from pathlib import Path

from models.simple_cnn import LAYER_NAMES
from sparsity.variants import Variant

BASELINE_SPARSITY = {"conv1": 0.42, "conv2": 0.58, "conv3": 0.55, "conv4": 0.66, "fc1": 0.71, "fc2": 0.63, "fc3": 0.0}
ALL_ATTACKS = ("pgd", "nes_untargeted_m0", "nes_untargeted_m0.9", "nes_targeted_m0", "nes_targeted_m0.9")


def _attack_entry(key, n, n_correct, success_correct, median, seed_shift):
    wrong = n - n_correct
    targeted = "targeted" in key and "untargeted" not in key
    # Untargeted: initially misclassified samples count as successes (TEAM.md definitions).
    successes = round(success_correct * n_correct) + (0 if targeted else wrong)
    entry = {"n": n, "n_correct": n_correct,
             "success_rate_all": successes / n,
             "success_rate_correct": round(success_correct * n_correct) / n_correct if n_correct else None,
             "robust_acc": (n_correct - round(success_correct * n_correct)) / n}
    if key.startswith("nes"):
        entry.update({"median_queries": median + seed_shift, "mean_queries": 1.4 * median + seed_shift,
                      "median_queries_all": 2 * median, "mean_queries_all": 2.5 * median})
    return entry


def result_document(method, variant, clean_acc, sparsity, attacks):
    return {
        "schema_version": 1,
        "method": method,
        "variant": {**variant.to_dict(), "name": variant.name},
        "checkpoint": {"path": str(variant.checkpoint_path("trained-models")),
                       "metadata": {"status": "complete", "collapsed": clean_acc < 0.15}},
        "clean_acc": clean_acc,
        "n_test": 10000,
        "activation_sparsity": sparsity,
        "eval_config": {"pgd": {"eps": 8 / 255, "steps": 50}},
        "attacks": attacks,
        "checks": [{"name": "pgd_within_eps", "passed": True, "detail": "max |delta| <= eps"}],
        "timings": {"pgd_s": 1.0},
    }


def write_result(results_dir, method, variant, clean_acc, sparsity, attacks):
    path = variant.results_path(results_dir, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result_document(method, variant, clean_acc, sparsity, attacks), indent=2))
    return path


def _effect(method, strength):
    """0 (no regularisation) .. 1 (strongest); L1 acts per decade, dropout linearly."""
    if method == "l1":
        return min(1.0, max(0.0, (math.log10(strength) + 5) / 6)) if strength > 0 else 0.0
    return strength / 0.6 if method == "dropout" else 0.0


def realistic_variant(results_dir, method, variant, attacks=ALL_ATTACKS, n=1000):
    """Write one result file whose numbers depend smoothly on layer, strength and seed."""
    effect = _effect(variant.method, variant.strength)
    depth = 0 if variant.is_baseline else LAYER_NAMES.index(variant.layer)
    collapse = variant.method == "l1" and variant.strength >= 10 and depth < 4
    clean = 0.1 if collapse else 0.78 - 0.12 * effect ** 2 - 0.004 * depth + 0.006 * variant.seed
    sparsity = dict(BASELINE_SPARSITY)
    if not variant.is_baseline and variant.layer != "fc3":
        base = BASELINE_SPARSITY[variant.layer]
        sparsity[variant.layer] = min(0.995, base + (0.98 - base) * effect)
    n_correct = round(clean * n)
    entries = {}
    for key in attacks:
        if key == "pgd":
            entries[key] = _attack_entry(key, n, n_correct, 1.0 - 0.02 * effect, 0, 0)
        else:
            momentum = 0.9 if key.endswith("0.9") else 0.0
            targeted = key.startswith("nes_targeted")
            rate = (0.55 if targeted else 0.93) - 0.15 * effect
            median = (2400 if targeted else 900) * (1 + 1.2 * effect) * (0.8 if momentum else 1.0)
            entries[key] = _attack_entry(key, n, n_correct, rate, round(median / 400) * 400, 400 * variant.seed)
    return write_result(results_dir, method, variant, round(clean, 4), sparsity, entries)


def realistic_results(results_dir, seeds=(0, 1)):
    """Both methods: baseline, every layer at the default strength, full sweeps on conv3 and fc1;
    dropout lacks targeted NES and fc2 lacks NES momentum 0.9, as partial evaluations do."""
    results_dir = Path(results_dir)
    plan = {"l1": (1e-5, 2e-4, 1e-2, 0.1, 1.0, 10.0), "dropout": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)}
    default = {"l1": 1e-2, "dropout": 0.3}
    for method, sweep in plan.items():
        attacks = ALL_ATTACKS if method == "l1" else ALL_ATTACKS[:3]
        for seed in seeds:
            realistic_variant(results_dir, method, Variant.baseline(seed), attacks)
            for layer in LAYER_NAMES:
                for strength in sweep if layer in ("conv3", "fc1") else (default[method],):
                    layer_attacks = [a for a in attacks if not (layer == "fc2" and a.endswith("0.9"))]
                    realistic_variant(results_dir, method, Variant(method, layer, strength, seed), layer_attacks)
    return results_dir
