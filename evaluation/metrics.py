"""The metrics of one attack run's outcome, with stated denominators; its targets; its progress bar."""
import torch
from tqdm.auto import tqdm

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


class AttackProgress:
    """A tqdm bar over one attack's images that shows the running success rate (and mean queries)."""

    def __init__(self, total, desc):
        self.bar = tqdm(total=total, desc=desc, unit="img", leave=False)
        self.successes = self.seen = self.queries = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.bar.close()

    def step(self, predictions, goal, targeted, queries=None):
        hit = predictions == goal.cpu()
        self.successes += int((hit if targeted else ~hit).sum())
        self.seen += len(goal)
        postfix = {"success": f"{self.successes / self.seen:.3f}"}
        if queries is not None:
            self.queries += int(queries.sum())
            postfix["mean_q"] = f"{self.queries / self.seen:.0f}"
        self.bar.set_postfix(postfix)
        self.bar.update(len(goal))


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
