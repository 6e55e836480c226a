"""AutoAttack (Croce & Hein, 2020) through its official package, ``pyautoattack``.

Two configurations of the same ensemble, both with the package's own settings
for the standard L-inf evaluation:

- ``AutoAttack``: the standard version, APGD-CE, APGD-T, FAB-T and Square, the
  field's reference white-box number;
- ``APGD``: APGD-CE and APGD-T alone, a cheaper gradient-based check.

Both are untargeted. APGD-T's targeted DLR loss needs four classes, so models
with fewer skip it (and FAB-T/APGD-T attack at most ``classes - 1`` targets).
"""
import contextlib

import torch
from pyautoattack import AutoAttack as OfficialAutoAttack

from attacks.base import ALL_IMAGES, DEFAULT_EPS, Attack, AttackRun, check_inputs, eval_mode
from common import validation

STANDARD_TARGETS = 9  # target classes of APGD-T and FAB-T in the standard version
DLR_TARGETED_MIN_CLASSES = 4


@contextlib.contextmanager
def private_rng(device):
    """The package seeds torch's global generators; keep the caller's streams as they were."""
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


class AutoAttack(Attack):
    """``x_adv, None = AutoAttack(model, eps=8/255)(x, y)``: the standard version of the official package."""

    name = "autoattack"
    reference = True
    parts = ("apgd-ce", "apgd-t", "fab-t", "square")
    title = "AutoAttack (standard)"

    def __init__(self, model, eps=DEFAULT_EPS, seed=0):
        super().__init__(model, seed if seed is not None else 0)
        self.eps = validation.number(eps, "eps", minimum=0, maximum=1)
        self.parts_run = None  # what the last call ran: fewer classes leave out APGD-T

    def settings(self):
        parts = self.parts_run or self.parts
        return {"eps": self.eps, "version": "standard" if parts == AutoAttack.parts else "custom",
                "attacks": " ".join(parts), "package": "pyautoattack"}

    @classmethod
    def evaluation_runs(cls, model, config):
        return [AttackRun(cls.name, cls.title, cls(model, eps=config.eps, seed=config.seed), images=ALL_IMAGES)]

    def _configured(self, device, num_classes):
        self.parts_run = tuple(p for p in self.parts if p != "apgd-t" or num_classes >= DLR_TARGETED_MIN_CLASSES)
        attack = OfficialAutoAttack(self.model, norm="Linf", eps=self.eps, seed=self.seed, device=device,
                                    version="custom", attacks=list(self.parts_run))
        # the standard version's settings (version="custom" would keep the constructor's 5 restarts)
        attack.apgd.n_restarts = 1
        attack.apgd_targeted.n_restarts = 1
        attack.fab.n_restarts = 1
        attack.square.n_queries = 5000
        attack.apgd_targeted.n_target_classes = min(STANDARD_TARGETS, num_classes - 1)
        attack.fab.n_target_classes = min(STANDARD_TARGETS, num_classes - 1)
        attack.verbose = False
        return attack

    def __call__(self, x, y, targeted=False):
        if targeted:
            raise ValueError(f"{type(self).__name__} is an untargeted evaluation")
        x, y = check_inputs(self.model, x, y)
        with eval_mode(self.model), private_rng(x.device):
            num_classes = self.model(x[:1]).shape[1]
            attack = self._configured(x.device, num_classes)
            x_adv, _ = attack.run_standard_evaluation(x, y, batch_size=len(x))
        return x_adv.detach(), None


class APGD(AutoAttack):
    """APGD-CE then APGD-T, with AutoAttack's standard settings: a cheaper white-box check."""

    name = "apgd"
    reference = False
    parts = ("apgd-ce", "apgd-t")
    title = "APGD-CE + APGD-T"
