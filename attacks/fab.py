"""FAB (Croce & Hein, ICML 2020), the minimum-norm attack of the official AutoAttack package, untargeted.

Not an entry of ``attacks.ATTACKS``: a minimum-norm attack has no budget to be run at; it answers "how far is
each image from the decision boundary", which ``evaluation.minimal`` turns into a per-image eps*.
"""
import contextlib

import torch
from pyautoattack.fab_pt import FABAttack_PT

from attacks.autoattack import private_rng
from attacks.base import Attack, check_inputs, eval_mode
from attacks.pgd import NORMS
from common import validation

PACKAGE_NORMS = {"linf": "Linf", "l2": "L2"}


@contextlib.contextmanager
def input_gradients_only(model):
    """FAB backpropagates through the model; parameter gradients would be computed and accumulated for nothing."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


class FAB(Attack):
    """``x_adv, None = FAB(model, norm="linf", steps=100)(x, y)``: per image, the smallest perturbation (in
    ``norm``) that FAB finds to change the prediction, within [0, 1]; ``x`` itself where it finds none and for
    images already misclassified. The package's settings otherwise (alpha_max 0.1, eta 1.05, beta 0.9), one run
    from the clean image."""

    name = "fab"

    def __init__(self, model, norm="linf", steps=100, seed=0):
        super().__init__(model, seed if seed is not None else 0)
        self.norm = validation.choice(norm, "norm", NORMS)
        self.steps = validation.integer(steps, "steps", minimum=1)

    def settings(self):
        return {"norm": self.norm, "steps": self.steps, "package": "pyautoattack"}

    def __call__(self, x, y, targeted=False):
        if targeted:
            raise ValueError("FAB here is untargeted: it looks for the nearest boundary of any class")
        x, y = check_inputs(self.model, x, y)
        with eval_mode(self.model), input_gradients_only(self.model), private_rng(x.device):
            attack = FABAttack_PT(self.model, norm=PACKAGE_NORMS[self.norm], n_restarts=1, n_iter=self.steps,
                                  seed=self.seed, device=x.device)
            x_adv = attack.attack_single_run(x, y, use_rand_start=False)
        return x_adv.detach().to(x.dtype), None
