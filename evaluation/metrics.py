"""Running one attack over images in batches (``run_attack``), and the metrics of its outcome with stated
denominators."""
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
    shift = torch.randint(1, num_classes, y.shape, generator=torch.Generator().manual_seed(seed))
    return (y.cpu() + shift) % num_classes


def run_attack(attack, x, y, targets=None, prior=None, batch_size=256):
    """Per-image outcomes of attacking ``x`` in batches; ``prior``: the outcome of the run this one continues."""
    model, y = attack.model, y.cpu()
    parts = {"adv_pred": [], "queries": [], "adversarial": []}
    desc = attack.name + (f" eps={attack.eps:.4g}" if isinstance(getattr(attack, "eps", None), float) else "")
    successes = seen = total_queries = 0
    with tqdm(total=len(x), desc=desc, unit="img", leave=False) as bar:
        for start in range(0, len(x), batch_size):
            x_batch, stop = x[start:start + batch_size], min(start + batch_size, len(x))
            goal = (y if targets is None else targets)[start:stop]
            if prior is None:
                adversarial, queries = attack(x_batch, goal.to(x.device), targeted=targets is not None)
            else:
                still_correct = (prior["adv_pred"][start:stop] == y[start:stop]).to(x.device)
                adversarial, queries = attack.extend(x_batch, goal.to(x.device), prior["adversarial"][start:stop],
                                                     still_correct)
            with eval_mode(model), torch.inference_mode():
                parts["adv_pred"].append(model(adversarial).argmax(1).cpu())
            parts["adversarial"].append(adversarial)
            hit = parts["adv_pred"][-1] == goal
            successes += int((hit if targets is not None else ~hit).sum())
            seen += len(goal)
            postfix = {"success": f"{successes / seen:.3f}"}
            if queries is not None:
                parts["queries"].append(queries.cpu())
                total_queries += int(queries.sum())
                postfix["mean_q"] = f"{total_queries / seen:.0f}"
            bar.set_postfix(postfix)
            bar.update(len(goal))
    outcome = {key: torch.cat(values) for key, values in parts.items() if values}
    if not len(x):  # nothing left to attack (an audit radius every image was already broken at): an empty outcome
        outcome = {"adv_pred": y.new_empty(0), "adversarial": x,
                   **({"queries": y.new_empty(0)} if attack.counts_queries else {})}
    hit = outcome["adv_pred"] == (y if targets is None else targets.cpu())
    outcome["success"] = hit if targets is not None else ~hit
    return outcome


def attack_metrics(outcome, y, clean_pred, targeted):
    """The per-attack entry of a result record from ``run_attack``'s outcome and the clean predictions."""
    y = y.cpu()
    correct = clean_pred.cpu() == y
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
        for suffix, chosen in (("", queries[success]), ("_all", queries), ("_correct", queries[success & correct])):
            metrics[f"median_queries{suffix}"] = stats.median(chosen.tolist()) if len(chosen) else None
            metrics[f"mean_queries{suffix}"] = stats.mean(chosen.tolist()) if len(chosen) else None
        metrics["max_queries"] = int(queries.max()) if n else None
        metrics["denominators"] += QUERY_DENOMINATORS
    return metrics
