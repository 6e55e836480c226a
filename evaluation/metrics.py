"""Running one configured attack over a set of images, and the metrics of its outcome with stated denominators.

Pure functions over a model and tensors (x float in [0, 1], y int64); batches
move to ``device`` one at a time, per-image outcomes come back on the CPU.
"""
import torch
from tqdm.auto import tqdm

from attacks.base import eval_mode
from common import stats

DENOMINATORS = ("success_rate_all: successes / n (every attacked image; untargeted attacks count initially "
                "misclassified images as successes: the original repository's number). success_rate_correct: "
                "successes among the n_correct initially correct images / n_correct. robust_acc: images still "
                "predicted as their true label after the attack / n.")
QUERY_DENOMINATORS = (" median_queries, mean_queries: over successful images (null if none); *_all: over all n; "
                      "*_correct: over successful, initially correct images. Every model evaluation of an image is "
                      "one query, including the clean check, so an initially successful image costs 1 query.")


def make_targets(y, num_classes, seed):
    """Target labels (y + randint(1, C)) mod C: never the true label, reproducible under seed."""
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, y.shape, generator=generator)
    return (y.cpu() + shift) % num_classes


def run_attack(model, attack, x, y, device, batch_size, targets=None, desc="attack"):
    """Attack every row of x in batches; per-image outcomes on the CPU.

    Returns a dict of tensors: ``clean_pred``, ``adv_pred``, ``success`` (goal met
    at the end: prediction != y, or == target when ``targets`` is given) and, for
    attacks that count queries, ``queries``. The bar shows the running success rate (and mean queries).
    """
    y = y.cpu()
    outcome = {"clean_pred": [], "adv_pred": [], "queries": []}
    successes = seen = total_queries = 0
    with tqdm(total=len(x), desc=desc, unit="img", leave=False) as bar:
        for start in range(0, len(x), batch_size):
            x_batch = x[start:start + batch_size].to(device)
            goal = (y if targets is None else targets)[start:start + batch_size]
            adversarial, queries = attack(x_batch, goal.to(device), targeted=targets is not None)
            if queries is not None:
                outcome["queries"].append(queries.cpu())
                total_queries += int(queries.sum())
            with eval_mode(model), torch.inference_mode():
                outcome["clean_pred"].append(model(x_batch).argmax(1).cpu())
                outcome["adv_pred"].append(model(adversarial).argmax(1).cpu())
            hit = outcome["adv_pred"][-1] == goal
            successes += int((hit if targets is not None else ~hit).sum())
            seen += len(goal)
            postfix = {"success": f"{successes / seen:.3f}"}
            if outcome["queries"]:
                postfix["mean_q"] = f"{total_queries / seen:.0f}"
            bar.set_postfix(postfix)
            bar.update(len(goal))
    result = {key: torch.cat(parts) for key, parts in outcome.items() if parts}
    hit = result["adv_pred"] == (targets.cpu() if targets is not None else y)
    result["success"] = hit if targets is not None else ~hit
    return result


def _median(values):
    return stats.median(values.tolist()) if len(values) else None


def _mean(values):
    return stats.mean(values.tolist()) if len(values) else None


def attack_metrics(outcome, y, targeted):
    """The per-attack entry of a result record from ``run_attack``'s outcome."""
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
