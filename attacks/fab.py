"""FAB (Croce & Hein, ICML 2020), the minimum-norm attack of the official AutoAttack package. Not an entry of
``attacks.ATTACKS``: it has no budget to be run at; it answers how far each image is from the decision boundary,
which ``evaluation.minimal`` turns into a per-image eps*.
"""
from dataclasses import dataclass

import torch
from pyautoattack.fab_pt import FABAttack_PT

from attacks.autoattack import PACKAGE_NORMS, private_rng
from attacks.base import Attack, AttackSettings, check_inputs, eval_mode, input_gradients_only
from attacks.pgd import NORMS
from common import validation
from common.cli import option


@dataclass(frozen=True)
class FABSettings(AttackSettings):
    """The eps* search's FAB runs and targets (``evaluation.minimal.Search``)."""

    steps: int = option(100, "FAB's iterations for eps* (default {default}, the package's)", metavar="N")
    restarts: int = option(2, "FAB's untargeted runs for eps*: the first from the clean image, then random starts "
                              "(default {default})", metavar="N")
    targets: int = option(3, "top classes of FAB-T and of the eps* bisection's APGD-T (default {default})",
                          key="minimal_targets", metavar="N")
    quick = {"steps": 20, "restarts": 1, "targets": 1}

    def validate(self):
        validation.integer(self.steps, "steps", minimum=1)
        validation.integer(self.restarts, "restarts", minimum=1)
        validation.integer(self.targets, "targets", minimum=0)


def norms(delta, norm):
    flat = delta.flatten(1).double()
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


class FAB(Attack):
    """``x_adv, None = FAB(model, norm="linf", steps=100, restarts=1, targets=0, limit=None)(x, y)``: per image,
    the smallest perturbation (in ``norm``) any of FAB's runs finds to change the prediction; ``x`` itself where
    none does and for images already misclassified.

    Each run attacks every correctly classified image at once: ``restarts`` untargeted ones (the first from the
    clean image, the others from the package's random start at half the smallest size found so far, or half
    ``limit``), then FAB-T towards each of the ``targets`` classes ranked highest after the true one, as
    AutoAttack's FAB-T does. The package's settings otherwise."""

    name = "fab"
    Settings = FABSettings

    def __init__(self, model, norm="linf", steps=100, restarts=1, targets=0, limit=None, seed=0):
        super().__init__(model, seed if seed is not None else 0)
        self.norm = validation.choice(norm, "norm", NORMS)
        self.steps = validation.integer(steps, "steps", minimum=1)
        self.restarts = validation.integer(restarts, "restarts", minimum=1)
        self.targets = validation.integer(targets, "targets", minimum=0)
        self.limit = limit

    def settings(self):
        return {"norm": self.norm, "steps": self.steps, "restarts": self.restarts, "targets": self.targets,
                "package": "pyautoattack"}

    def __call__(self, x, y, targeted=False):
        if targeted:
            raise ValueError("FAB here looks for the nearest boundary of any class: call it untargeted")
        x, y = check_inputs(self.model, x, y)
        with eval_mode(self.model), input_gradients_only(self.model), private_rng(x.device):
            torch.manual_seed(self.seed)
            with torch.no_grad():
                logits = self.model(x)
            correct = (logits.argmax(1) == y).nonzero().squeeze(1)
            best = torch.full((len(x),), float("inf"), dtype=torch.float64, device=x.device)
            x_best = x.clone()
            if not len(correct):
                return x_best, None
            num_classes = logits.shape[1]
            attack = FABAttack_PT(self.model, norm=PACKAGE_NORMS[self.norm], n_restarts=1, n_iter=self.steps,
                                  seed=self.seed, device=x.device)
            runs = [(False, restart > 0, None) for restart in range(self.restarts)]
            runs += [(True, False, rank) for rank in range(2, min(self.targets, num_classes - 1) + 2)]
            limit = float("inf") if self.limit is None else float(self.limit)
            for is_targeted, random_start, rank in runs:
                found = best[correct]
                # the package's random start: uniform at min(best so far, eps) / 2 around the image
                attack.eps = torch.where(torch.isfinite(found), found, limit).float().clamp(max=1.0).to(x.device)
                if rank is not None:
                    attack.target_class = rank
                x_adv = attack.attack_single_run(x[correct], y[correct], use_rand_start=random_start,
                                                 is_targeted=is_targeted).detach().to(x.dtype)
                with torch.no_grad():
                    fooled = self.model(x_adv).argmax(1) != y[correct]
                size = norms(x_adv - x[correct], self.norm)
                better = fooled & (size < found)
                best[correct[better]] = size[better]
                x_best[correct[better]] = x_adv[better]
        return x_best, None
