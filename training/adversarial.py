"""Adversarial training, the study's positive control: each SGD step trains on attacked images alone (the loss:
cross-entropy plus the spec's sparsity penalty), as in both papers.

- ``pgd`` (Madry et al. 2018): L-inf PGD from a uniform random start, ``steps`` sign-gradient steps of
  ``step_size`` (default 2.5 eps / steps, their rule);
- ``fgsm-rs`` (Wong, Rice & Kolter 2020, "Fast is better than free"): the same PGD, one step of 1.25 eps.

Both run the project's PGD on every image for every step (the inner maximisation wants the highest loss, not the
first misclassified point), in train mode: a dropout arm's perturbation ascends the stochastic loss the step then
descends (without dropout the modes agree: no batch norm). Which attack and its eps are the spec's identity
(``adv``, ``adv_eps``); steps and step size are recipe knobs (None: the defaults here).
"""
import numpy as np

from attacks.pgd import PGD
from common import validation
from common.errors import ConfigError

ADV_TRAININGS = ("pgd", "fgsm-rs")
DEFAULT_ADV_STEPS = 10  # PGD's; FGSM-RS takes one step
DATA_RANGE = 1.0  # images are in [0, 1]: a larger L-inf eps lets the attack replace the image
FGSM_RS_STEP = 1.25  # x eps (Wong et al.'s best step)
MADRY_STEP = 2.5  # x eps / steps


def validate_adversarial(name, eps):
    """ConfigError (fields adv_train, adv_eps) for a bad setting; ``name`` None: none."""
    if name is None:
        return
    validation.choice(name, "adv_train", ADV_TRAININGS)
    if eps is None:
        raise ConfigError("adv_eps", f"is needed with adversarial training {name}: the L-inf budget, e.g. 0.1")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= DATA_RANGE:
        raise ConfigError("adv_eps", f"must be in (0, {DATA_RANGE:g}] (an L-inf budget on images in [0, 1], e.g. "
                                     f"0.1), got {eps!r}")


def settings(spec, recipe):
    """The resolved attack of ``spec``'s adversarial training (what the checkpoint records), or None."""
    if spec.adv is None:
        return None
    steps = 1 if spec.adv == "fgsm-rs" else (recipe.adv_steps or DEFAULT_ADV_STEPS)
    step_size = recipe.adv_step_size
    if step_size is None:
        step_size = FGSM_RS_STEP * spec.adv_eps if spec.adv == "fgsm-rs" else MADRY_STEP * spec.adv_eps / steps
    return {"attack": spec.adv, "eps": spec.adv_eps, "steps": steps, "step_size": step_size, "random_start": True,
            "model_mode": "train", "loss_on": "adversarial images only"}


class AdversarialExamples:
    """``examples(model, x, y)``: the training batch attacked with the spec's adversarial training. The random
    starts are seeded by (spec seed, epoch) — ``set_epoch`` — so that a resumed run replays them."""

    def __init__(self, settings, seed):
        self.settings, self.seed, self.epoch = settings, seed, 0
        self._attack = None

    def set_epoch(self, epoch):
        self.epoch, self._attack = epoch, None

    def __call__(self, model, x, y):
        if self._attack is None or self._attack.model is not model:
            seed = int(np.random.SeedSequence([self.seed, self.epoch, 26]).generate_state(1)[0])
            self._attack = PGD(model, eps=self.settings["eps"], alpha=self.settings["step_size"],
                               steps=self.settings["steps"], random_start=True, seed=seed,
                               stop_on_success=False, keep_mode=True)
        x_adv, _ = self._attack(x, y)
        return x_adv
