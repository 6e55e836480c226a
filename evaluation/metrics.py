"""Running one configured attack over a set of images, and the metrics of its outcome with stated denominators.

Pure functions over a model and tensors (x float in [0, 1], y int64); images already on ``device`` stay
there (the evaluation moves them once), others move one batch at a time; per-image outcomes come back on the CPU.
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


def run_attack(model, attack, x, y, device, batch_size, targets=None, desc="attack", clean_pred=None, prior=None,
               keep_adversarial=False):
    """Attack every row of x in batches; per-image outcomes on the CPU.

    Returns a dict of tensors: ``clean_pred``, ``adv_pred``, ``success`` (goal met
    at the end: prediction != y, or == target when ``targets`` is given) and, for
    attacks that count queries, ``queries``. The bar shows the running success rate (and mean queries).
    ``clean_pred``: the model's predictions on x where the caller has them already (else they are computed).
    ``keep_adversarial``: also return the adversarial images (``adversarial``, on ``device``), for a run that
    continues this one. ``prior``: the outcome of the run this attack continues (``AttackRun.after``, same images
    and batches), whose adversarial images and still-correct images each batch hands to ``attack.extend``.
    """
    y = y.cpu()
    outcome = {"clean_pred": [], "adv_pred": [], "queries": [], "adversarial": []}
    successes = seen = total_queries = 0
    with tqdm(total=len(x), desc=desc, unit="img", leave=False) as bar:
        for start in range(0, len(x), batch_size):
            stop = min(start + batch_size, len(x))
            x_batch = x[start:stop].to(device)
            goal = (y if targets is None else targets)[start:stop]
            if prior is None:
                adversarial, queries = attack(x_batch, goal.to(device), targeted=targets is not None)
            else:
                still_correct = (prior["adv_pred"][start:stop] == y[start:stop]).to(device)
                adversarial, queries = attack.extend(x_batch, goal.to(device), prior["adversarial"][start:stop],
                                                     still_correct)
            if queries is not None:
                outcome["queries"].append(queries.cpu())
                total_queries += int(queries.sum())
            if keep_adversarial:
                outcome["adversarial"].append(adversarial)
            with eval_mode(model), torch.inference_mode():
                if clean_pred is None:
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
    if clean_pred is not None:
        result["clean_pred"] = clean_pred.cpu()
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
