"""Result records of made-up numbers, written into a result store (``records.store.ResultStore``) as eval writes
them: one ``ResultRecord`` per model, named by its ``ModelSpec``.

The numbers follow the shape real CIFAR-10 results take (white-box attacks almost always succeed, query attacks need
hundreds to thousands of queries, strong regularisation raises sparsity and costs accuracy) so that rendered figures
can be inspected.
"""
import math
from pathlib import Path

import torch

from evaluation.minimal import BISECTION_METHOD, CENSORED, CLEAN, FAB_METHOD, MinimalPerturbation
from models import SimpleCNN
from models.spec import ModelSpec
from records.parts import AttackResult, Check, CheckpointInfo, CurvePoint, EpsStarEntry, QueryStats, WorstCase
from records.record import ResultRecord
from records.store import ResultStore

LAYER_NAMES = SimpleCNN.LAYER_NAMES
DATASET = "cifar10"
BASELINE_SPARSITY = {"conv1": 0.42, "conv2": 0.58, "conv3": 0.55, "conv4": 0.66, "fc1": 0.71, "fc2": 0.63, "fc3": 0.0}
ALL_ATTACKS = ("pgd", "square", "nes_untargeted_m0", "nes_untargeted_m0.9", "nes_targeted_m0", "nes_targeted_m0.9")
THREAT = {"pgd": "white-box"}
TITLES = {"pgd": "PGD", "square": "Square", "nes_untargeted_m0": "NES untargeted, momentum 0",
          "nes_untargeted_m0.9": "NES untargeted, momentum 0.9", "nes_targeted_m0": "NES targeted, momentum 0",
          "nes_targeted_m0.9": "NES targeted, momentum 0.9"}


def spec(method, layer, strength, seed, adv=None, adv_eps=None):
    """A CIFAR-10 model's spec; ``method`` "standard": the baseline."""
    if method == "standard":
        return ModelSpec.baseline_of(seed, adv, adv_eps, dataset=DATASET)
    return ModelSpec(method, layer, strength, seed, adv, adv_eps, dataset=DATASET)


def baseline(seed):
    return spec("standard", None, 0.0, seed)


def attack_entry(key, n, n_correct, fooled_correct, robust=None, median=None, targeted=None, title=None):
    """One attack run's result as eval records it; ``fooled_correct`` of the ``n_correct`` images are fooled."""
    targeted = ("targeted" in key and "untargeted" not in key) if targeted is None else targeted
    wrong = n - n_correct
    successes = fooled_correct + (0 if targeted else wrong)
    queries = None if median is None else QueryStats(
        median_queries=median, mean_queries=1.4 * median, median_queries_all=2 * median, mean_queries_all=2.5 * median,
        median_queries_correct=median, mean_queries_correct=1.3 * median, max_queries=5000)
    return AttackResult(
        attack=key.split("_")[0], title=title or TITLES.get(key, key), threat_model=THREAT.get(key, "black-box"),
        reference=False, settings={"eps": 8 / 255}, targeted=targeted, n=n, n_correct=n_correct, n_success=successes,
        n_success_correct=fooled_correct, success_rate_all=successes / n if n else None,
        success_rate_correct=fooled_correct / n_correct if n_correct else None,
        robust_acc=(n_correct - fooled_correct) / n if robust is None else robust, denominators="made up",
        queries=queries)


def worst_case(attacks):
    """The per-image worst case as eval records it, for made-up entries: at most the lowest attack's number."""
    if not attacks:
        return None
    n = max(entry.n for entry in attacks.values())
    lowest = min(entry.robust_acc for entry in attacks.values())
    subset = min(entry.n for entry in attacks.values())
    return WorstCase(n, round(lowest * n), round(lowest * n) / n, tuple(attacks), subset,
                     round(lowest * subset) / subset)


def minimal_document(clean_acc, effect, seed, n=100, limit=32 / 255, norm="linf"):
    """A minimal-perturbation entry of ``n`` images: misclassified ones at 0, the others log-normally spread around a
    median that grows with ``effect``, a few censored at ``limit``; built with the code eval uses."""
    generator = torch.Generator().manual_seed(seed)
    scale = (1.5 / 255) * (1 + effect) * (1 if norm == "linf" else 28.0)
    limit = limit if norm == "linf" else limit * 32 * math.sqrt(3)
    eps = (scale * torch.exp(0.6 * torch.randn(n, generator=generator, dtype=torch.float64)))
    eps = torch.where(eps > limit, math.inf, eps)
    wrong = torch.arange(n) >= round(clean_acc * n)
    eps[wrong] = 0.0
    methods = [CLEAN if w else CENSORED if math.isinf(e) else (FAB_METHOD if i % 3 else BISECTION_METHOD)
               for i, (w, e) in enumerate(zip(wrong.tolist(), eps.tolist()))]
    result = MinimalPerturbation(norm, limit, eps, methods, eps * 1.01, eps, torch.ones(n, dtype=torch.bool),
                                 torch.zeros(n, 1))
    return EpsStarEntry.measured(result, seed=seed, settings={"fab_steps": 100})


def minimal_from(values, limit, norm="linf", seed=0):
    """The entry eval writes for per-image eps* ``values`` (None: censored, 0: misclassified clean)."""
    eps = torch.tensor([math.inf if v is None else v for v in values], dtype=torch.float64)
    methods = [CENSORED if v is None else CLEAN if v == 0 else FAB_METHOD for v in values]
    result = MinimalPerturbation(norm, limit, eps, methods, eps, eps, torch.ones(len(eps), dtype=torch.bool),
                                 torch.zeros(len(eps), 1))
    return EpsStarEntry.measured(result, seed=seed, settings={})


def result_record(root, model, clean_acc, sparsity, attacks, learned=True, curves=None, quick=False, minimal=None,
                  train_loss=None, checks=(Check("pgd_eps1_success", "passed", "-"),), machine=None, eval_config=None):
    """The record of ``model`` (a ModelSpec) in the store at ``root``, of made-up numbers; ``curves``: run key ->
    [(eps, n, robust_acc)]."""
    metadata = {"status": "complete", "collapsed": clean_acc < 0.15,
                "recipe": {"model": model.model, "dataset": model.dataset},
                **({} if train_loss is None else {"final_train_loss": train_loss})}
    return ResultRecord(
        path=ResultStore(root).path(model), spec=model,
        checkpoint=CheckpointInfo(str(model.checkpoint_path("trained-models")), "0" * 64, metadata),
        clean_acc=clean_acc, learned=learned, n_test=10000, sparsity=dict(sparsity), worst_case=worst_case(attacks),
        attacks=dict(attacks),
        curves={key: tuple(CurvePoint(eps, acc, n) for eps, n, acc in points)
                for key, points in (curves or {}).items()},
        minimal=dict(minimal or {}), audit=None, images_sha256="1" * 64, checks=tuple(checks),
        timings={"pgd_s": 1.0}, query_indices=(),
        eval_config=eval_config or {"eps": 8 / 255, "steps": 50, "quick": quick}, machine=machine)


def write_result(root, model, clean_acc, sparsity, attacks, **options):
    """Write the record (``result_record``) through the store; returns its path."""
    return ResultStore(root).put(result_record(root, model, clean_acc, sparsity, attacks, **options)).path


def _effect(method, strength):
    """0 (no regularisation) .. 1 (strongest); L1 acts per decade, dropout linearly."""
    if method == "l1":
        return min(1.0, max(0.0, (math.log10(strength) + 5) / 6)) if strength > 0 else 0.0
    return strength / 0.6 if method == "dropout" else 0.0


def realistic_model(root, model, attacks=ALL_ATTACKS, n=1000):
    """Write one model's record whose numbers depend smoothly on layer, strength and seed."""
    effect = _effect(model.method, model.strength)
    depth = 0 if model.is_baseline else LAYER_NAMES.index(model.layer)
    collapse = model.method == "l1" and model.strength >= 10 and depth < 4
    clean = 0.1 if collapse else 0.78 - 0.12 * effect ** 2 - 0.004 * depth + 0.006 * model.seed
    sparsity = dict(BASELINE_SPARSITY)
    if not model.is_baseline and model.layer != "fc3":
        base = BASELINE_SPARSITY[model.layer]
        sparsity[model.layer] = min(0.995, base + (0.98 - base) * effect)
    n_correct = round(clean * n)
    entries = {}
    for key in attacks:
        if key == "pgd":
            entries[key] = attack_entry(key, n, n_correct, round((1.0 - 0.02 * effect) * n_correct))
        else:
            momentum = 0.9 if key.endswith("0.9") else 0.0
            targeted = key.startswith("nes_targeted")
            rate = (0.55 if targeted else 0.93) - 0.15 * effect
            median = (2400 if targeted else 900) * (1 + 1.2 * effect) * (0.8 if momentum else 1.0)
            if key == "square":
                rate, median = 0.99 - 0.05 * effect, 60 * (1 + effect)
            entries[key] = attack_entry(key, n // 5, n_correct // 5, round(rate * (n_correct // 5)),
                                        median=round(median / 10) * 10 + 40 * model.seed)
    curves = {"pgd": [(eps / 255, n, max(0.0, clean * (1 - eps / 4) + 0.02 * effect)) for eps in (1, 2, 4, 8)]}
    minimal = {norm: minimal_document(clean, effect * (depth + 1) / 7, model.seed, norm=norm) for norm in ("linf", "l2")}
    return write_result(root, model, round(clean, 4), sparsity, entries, learned=not collapse, curves=curves,
                        minimal=minimal)


def realistic_results(root, seeds=(0, 1)):
    """The standard baseline and both methods: every layer at the default strength, full sweeps on conv3 and fc1;
    dropout lacks targeted NES and fc2 lacks NES momentum 0.9, as partial evaluations do."""
    root = Path(root)
    plan = {"l1": (1e-5, 2e-4, 1e-2, 0.1, 1.0, 10.0), "dropout": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)}
    default = {"l1": 1e-2, "dropout": 0.3}
    for seed in seeds:
        realistic_model(root, spec("standard", None, 0.0, seed))
    for method, sweep in plan.items():
        attacks = ALL_ATTACKS if method == "l1" else ALL_ATTACKS[:4]
        for seed in seeds:
            for layer in LAYER_NAMES:
                for strength in sweep if layer in ("conv3", "fc1") else (default[method],):
                    layer_attacks = [a for a in attacks if not (layer == "fc2" and a.endswith("0.9"))]
                    realistic_model(root, spec(method, layer, strength, seed), layer_attacks)
    return root
