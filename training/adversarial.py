"""Adversarial training, the study's positive control: each SGD step trains on attacked images.

- ``pgd``: Madry et al. 2018, "Towards deep learning models resistant to adversarial attacks": L-inf PGD from a
  uniform random start in the eps-ball, ``steps`` sign-gradient steps of ``step_size`` (default 2.5 eps / steps,
  their rule), projected onto the ball and [0, 1].
- ``fgsm-rs``: Wong, Rice & Kolter 2020, "Fast is better than free": one sign-gradient step of 1.25 eps from a
  uniform random start in [-eps, eps], projected onto the ball and [0, 1] (the same PGD, one step).

Both use the project's PGD (attacks.pgd) with every step on every image (no early stop at the first
misclassified point: the inner maximisation wants the highest loss) and the model in the mode the training loss
uses (train mode): a dropout arm's perturbation ascends the same stochastic loss that the step then descends
(Madry et al.'s saddle point); for every arm without dropout the two modes compute the same function (the
project's models have no batch norm). The loss is the cross-entropy (plus the variant's sparsity penalty) on the
adversarial images alone, as in both papers.

Which attack and its eps belong to the variant's identity (sparsity.variants.Variant ``adv``, ``adv_eps``); steps
and step size are recipe knobs (Recipe ``adv_steps``, ``adv_step_size``; None: the defaults here).
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


def validate_adversarial(name, eps, steps=None, step_size=None):
    """ConfigError (fields adv_train, adv_eps, adv_steps, adv_step_size) for a bad setting; ``name`` None: none."""
    if name is None:
        return
    validation.choice(name, "adv_train", ADV_TRAININGS)
    if eps is None:
        raise ConfigError("adv_eps", f"is needed with adversarial training {name}: the L-inf budget, e.g. 0.1")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= DATA_RANGE:
        raise ConfigError("adv_eps", f"must be in (0, {DATA_RANGE:g}] (an L-inf budget on images in [0, 1], e.g. "
                                     f"0.1), got {eps!r}")
    if steps is not None:
        validation.integer(steps, "adv_steps", minimum=1)
    if step_size is not None:
        validation.number(step_size, "adv_step_size", above=0)


def adv_steps(name, steps):
    return 1 if name == "fgsm-rs" else (steps or DEFAULT_ADV_STEPS)


def adv_step_size(name, eps, steps=None, step_size=None):
    """The step size a setting resolves to: the given one, else the method's rule."""
    if step_size is not None:
        return step_size
    return FGSM_RS_STEP * eps if name == "fgsm-rs" else MADRY_STEP * eps / adv_steps(name, steps)


def settings(variant, recipe):
    """The resolved attack of ``variant``'s adversarial training (what the checkpoint records), or None."""
    if variant.adv is None:
        return None
    steps = adv_steps(variant.adv, recipe.adv_steps)
    return {"attack": variant.adv, "eps": variant.adv_eps, "steps": steps,
            "step_size": adv_step_size(variant.adv, variant.adv_eps, recipe.adv_steps, recipe.adv_step_size),
            "random_start": True, "model_mode": "train", "loss_on": "adversarial images only"}


class AdversarialExamples:
    """``examples(model, x, y)``: the training batch attacked with the variant's adversarial training. The random
    starts are seeded by (variant seed, epoch) — ``set_epoch`` — so that a resumed run replays them."""

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
