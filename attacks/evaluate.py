"""Evaluation of one model: clean accuracy, PGD and NES metrics, sanity checks.

Pure functions over a model and tensors (x float in [0, 1], y int64); batches
move to ``device`` one at a time, results come back on the CPU. The numbers
and their denominators are the ones of the result-file schema (README).
"""
import time
import warnings
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from attacks.nes import NES
from attacks.pgd import PGD, eval_mode

DENOMINATORS = ("success_rate_all: successes / n (every attacked sample; untargeted counts initially misclassified "
                "samples as successes). success_rate_correct: successes among the n_correct initially correct / "
                "n_correct. robust_acc: samples still predicted as their true label after the attack / n.")
QUERY_DENOMINATORS = (" median_queries, mean_queries: over successful samples (null if none); *_all: over all n; "
                      "*_correct: over successful, initially correct samples. Every model evaluation of a sample is "
                      "one query, including the clean check, so an initially successful sample costs 1 query.")
NES_MODES = ("untargeted", "targeted")


@dataclass(frozen=True)
class EvalConfig:
    """Every knob of one evaluation; ``asdict`` of it is the result file's ``eval_config``."""

    eps: float = 8 / 255
    alpha: float = 1 / 255
    steps: int = 50
    restarts: int = 1
    n_eval: int | None = None  # PGD on the first n_eval test samples; None = all
    nes_n: int = 1000  # NES on a seeded subset of the PGD samples
    nes_eps: float = 8 / 255
    nes_alpha: float = 1 / 255
    nes_steps: int = 50
    nes_samples: int = 200
    nes_sigma: float = 1 / 255
    nes_momenta: tuple = (0.0, 0.9)
    nes_modes: tuple = NES_MODES
    query_batch: int | None = None
    batch_size: int = 256  # PGD and clean evaluation
    nes_batch_size: int = 100  # samples per NES call; the queries go through the model in query_batch chunks
    check_n: int = 500  # samples used by the sanity checks that need extra PGD runs
    seed: int = 0

    def to_dict(self):
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def nes_key(mode, momentum):
    """Result key of one NES configuration: ``nes_untargeted_m0``, ``nes_targeted_m0.9``."""
    return f"nes_{mode}_m{momentum:g}"


def predict(model, x, device, batch_size=256):
    """Predicted labels (CPU int64) of every row of x, eval mode, no gradients."""
    predictions = []
    with eval_mode(model), torch.inference_mode():
        for batch in x.split(batch_size):
            predictions.append(model(batch.to(device)).argmax(1).cpu())
    return torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.int64)


def clean_accuracy(model, x, y, device, batch_size=256):
    return (predict(model, x, device, batch_size) == y.cpu()).float().mean().item()


def make_targets(y, num_classes, seed):
    """Target labels (y + randint(1, C)) mod C: never the true label, reproducible under seed."""
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, y.shape, generator=generator)
    return (y.cpu() + shift) % num_classes


def run_attack(model, attack, x, y, device, batch_size, targets=None, desc="attack"):
    """Attack every row of x in batches; per-sample outcomes on the CPU.

    Returns a dict of tensors: ``clean_pred``, ``adv_pred``, ``success`` (goal met
    at the end: prediction != y, or == target when ``targets`` is given) and, for
    NES, ``queries``. The bar shows the running success rate (and mean queries).
    """
    y = y.cpu()
    outcome = {"clean_pred": [], "adv_pred": [], "queries": []}
    successes = seen = total_queries = 0
    with tqdm(total=len(x), desc=desc, unit="img", leave=False) as bar:
        for start in range(0, len(x), batch_size):
            x_batch = x[start:start + batch_size].to(device)
            goal = (y if targets is None else targets)[start:start + batch_size]
            adversarial = attack(x_batch, goal.to(device), targeted=targets is not None)
            if isinstance(adversarial, tuple):
                adversarial, queries = adversarial
                outcome["queries"].append(queries.cpu())
                total_queries += int(queries.sum())
            with eval_mode(model), torch.inference_mode():
                outcome["clean_pred"].append(model(x_batch).argmax(1).cpu())
                outcome["adv_pred"].append(model(adversarial).argmax(1).cpu())
            met = outcome["adv_pred"][-1] == goal if targets is not None else outcome["adv_pred"][-1] != goal
            successes += int(met.sum())
            seen += len(goal)
            postfix = {"success": f"{successes / seen:.3f}"}
            if outcome["queries"]:
                postfix["mean_q"] = f"{total_queries / seen:.0f}"
            bar.set_postfix(postfix)
            bar.update(len(goal))
    result = {key: torch.cat(parts) for key, parts in outcome.items() if parts}
    result["success"] = result["adv_pred"] == (targets.cpu() if targets is not None else y)
    if targets is None:
        result["success"] = ~result["success"]
    return result


def _median(values):
    """Median averaging the two middle values for an even count; None for no values."""
    return torch.quantile(values.double(), 0.5).item() if len(values) else None


def _mean(values):
    return values.double().mean().item() if len(values) else None


def summarize(outcome, y, targeted):
    """The per-attack dict of the result schema from ``run_attack``'s outcome."""
    y = y.cpu()
    correct = outcome["clean_pred"] == y
    success = outcome["success"]
    n, n_correct = len(y), int(correct.sum())
    metrics = {
        "targeted": targeted,
        "n": n,
        "n_correct": n_correct,
        "n_success": int(success.sum()),
        "n_success_correct": int((success & correct).sum()),
        "success_rate_all": success.float().mean().item() if n else None,
        "success_rate_correct": (success & correct).sum().item() / n_correct if n_correct else None,
        "robust_acc": (outcome["adv_pred"] == y).float().mean().item() if n else None,
        "denominators": DENOMINATORS,
    }
    if "queries" in outcome:
        queries = outcome["queries"]
        metrics.update({
            "median_queries": _median(queries[success]),
            "mean_queries": _mean(queries[success]),
            "median_queries_all": _median(queries),
            "mean_queries_all": _mean(queries),
            "median_queries_correct": _median(queries[success & correct]),
            "mean_queries_correct": _mean(queries[success & correct]),
            "max_queries": int(queries.max()) if n else None,
        })
        metrics["denominators"] += QUERY_DENOMINATORS
    return metrics


def attack_metrics(model, attack, x, y, device, batch_size, targets=None, desc="attack"):
    """Run ``attack`` (a PGD or NES instance) over x and return the schema's per-attack dict."""
    outcome = run_attack(model, attack, x, y, device, batch_size, targets, desc)
    return summarize(outcome, y, targets is not None)


def _check(name, passed, detail):
    if not passed:
        warnings.warn(f"sanity check {name} failed: {detail}", stacklevel=2)
    return {"name": name, "passed": bool(passed), "detail": detail}


def check_large_eps(success_rate, n, threshold=0.99):
    """PGD with eps = 1 must fool the model almost always; if not, the gradients are broken or masked."""
    return _check("pgd_eps1_success", success_rate >= threshold,
                  f"untargeted PGD with eps=1 (step 2.5/steps, uniform random start) on the first {n} evaluated "
                  f"samples: success_rate_all {success_rate:.4f} (must be >= {threshold})")


def check_eps_monotone(robust_eps, robust_double, eps, n):
    """A bigger budget must not leave more samples correct; one sample of slack for random starts."""
    return _check("robust_acc_monotone_in_eps", robust_double <= robust_eps + 1 / n,
                  f"on the first {n} evaluated samples: robust_acc {robust_eps:.4f} at eps={eps:.5g}, "
                  f"{robust_double:.4f} at eps={2 * eps:.5g} (must not increase by more than one sample, {1 / n:.4f})")


def check_nes_not_stronger(nes_rate, pgd_rate, n, tolerance=0.02):
    """Black-box NES beating white-box PGD is a sign of gradient masking."""
    return _check("nes_not_stronger_than_pgd", nes_rate <= pgd_rate + tolerance,
                  f"on the same {n} NES samples: untargeted NES (momentum 0) success_rate_all {nes_rate:.4f} vs "
                  f"untargeted PGD {pgd_rate:.4f} (NES may exceed PGD by at most {tolerance})")


def _pgd(model, config, eps, alpha=None):
    return PGD(model, eps=eps, alpha=config.alpha if alpha is None else alpha, steps=config.steps,
               restarts=config.restarts, seed=config.seed)


def evaluate_model(model, x, y, num_classes, device, config=EvalConfig(), attacks=("pgd", "nes")):
    """Clean accuracy on all of x, then the selected attacks and their sanity checks.

    Returns ``{"clean_acc", "n_test", "attacks", "checks", "timings", "nes_indices"}``, the
    model-dependent part of a result file (``nes_indices``: which test rows NES attacked).
    """
    timings = {}
    started = time.perf_counter()
    acc = clean_accuracy(model, x, y, device, config.batch_size)
    timings["clean_s"] = time.perf_counter() - started
    n_eval = len(x) if config.n_eval is None else min(config.n_eval, len(x))
    x_eval, y_eval = x[:n_eval], y[:n_eval].cpu()
    generator = torch.Generator().manual_seed(config.seed)
    nes_indices = torch.randperm(n_eval, generator=generator)[:min(config.nes_n, n_eval)].sort().values
    results, checks, pgd_success = {}, [], None

    if "pgd" in attacks:
        started = time.perf_counter()
        outcome = run_attack(model, _pgd(model, config, config.eps), x_eval, y_eval, device, config.batch_size,
                             desc="PGD")
        timings["pgd_s"] = time.perf_counter() - started
        results["pgd"] = summarize(outcome, y_eval, targeted=False)
        pgd_success = outcome["success"]
        started = time.perf_counter()
        checks += _pgd_checks(model, config, x_eval, y_eval, device, outcome)
        timings["pgd_checks_s"] = time.perf_counter() - started

    if "nes" in attacks:
        x_nes, y_nes = x_eval[nes_indices], y_eval[nes_indices]
        targets = make_targets(y_nes, num_classes, config.seed)
        for mode in config.nes_modes:
            for momentum in config.nes_momenta:
                key = nes_key(mode, momentum)
                attack = NES(model, eps=config.nes_eps, alpha=config.nes_alpha, steps=config.nes_steps,
                             samples=config.nes_samples, sigma=config.nes_sigma, momentum=momentum,
                             query_batch=config.query_batch, seed=config.seed)
                started = time.perf_counter()
                outcome = run_attack(model, attack, x_nes, y_nes, device, config.nes_batch_size,
                                     targets if mode == "targeted" else None, desc=key)
                timings[f"{key}_s"] = time.perf_counter() - started
                results[key] = summarize(outcome, y_nes, targeted=mode == "targeted")
                if mode == "untargeted" and momentum == 0 and pgd_success is not None:
                    checks.append(check_nes_not_stronger(results[key]["success_rate_all"],
                                                         pgd_success[nes_indices].float().mean().item(),
                                                         len(nes_indices)))
    return {"clean_acc": acc, "n_test": len(x), "attacks": results, "checks": checks, "timings": timings,
            "nes_indices": nes_indices.tolist()}


def _pgd_checks(model, config, x, y, device, outcome):
    """eps = 1 must succeed; doubling eps must not raise robust accuracy (on the first check_n samples)."""
    n = min(config.check_n, len(x))
    if n == 0:
        return []
    x, y = x[:n], y[:n]
    large = run_attack(model, _pgd(model, config, 1.0, alpha=2.5 / max(config.steps, 1)), x, y, device,
                       config.batch_size, desc="check eps=1")
    double = run_attack(model, _pgd(model, config, 2 * config.eps), x, y, device, config.batch_size,
                        desc="check 2*eps")
    robust_eps = (outcome["adv_pred"][:n] == y).float().mean().item()
    robust_double = (double["adv_pred"] == y).float().mean().item()
    return [check_large_eps(large["success"].float().mean().item(), n),
            check_eps_monotone(robust_eps, robust_double, config.eps, n)]
