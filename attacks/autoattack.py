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
    # Where APGD (our first two parts, same settings and seed) runs in the same evaluation, we continue its result
    # rather than repeat it: the package attacks each part's survivors in turn, reseeding every part, so FAB-T and
    # Square on the images APGD left correct give what the whole ensemble gives.
    continues = "apgd"

    def __init__(self, model, eps=DEFAULT_EPS, seed=0):
        super().__init__(model, seed if seed is not None else 0)
        self.eps = validation.number(eps, "eps", minimum=0, maximum=1)
        self.parts_run = None  # what the last call ran: fewer classes leave out APGD-T
        self._num_classes = None
        self._packages = {}  # (device, parts) -> the package's configured AutoAttack, built once

    def settings(self):
        parts = self.parts_run or self.parts
        return {"eps": self.eps, "version": "standard" if parts == AutoAttack.parts else "custom",
                "attacks": " ".join(parts), "package": "pyautoattack"}

    @classmethod
    def evaluation_runs(cls, model, config):
        after = cls.continues if cls.continues in config.attacks else None
        return [AttackRun(cls.name, cls.title, cls(model, eps=config.eps, seed=config.seed), images=ALL_IMAGES,
                          after=after)]

    def _allowed(self, parts, x):
        """``parts`` less APGD-T where the model has too few classes for its targeted DLR loss."""
        if self._num_classes is None:
            self._num_classes = self.model(x[:1]).shape[1]
        return tuple(p for p in parts if p != "apgd-t" or self._num_classes >= DLR_TARGETED_MIN_CLASSES)

    def _package(self, device, parts):
        """The package's AutoAttack running ``parts`` with the standard version's settings, built once."""
        key = (torch.device(device), parts)
        if key not in self._packages:
            attack = OfficialAutoAttack(self.model, norm="Linf", eps=self.eps, seed=self.seed, device=device,
                                        version="custom", attacks=list(parts))
            # the standard version's settings (version="custom" would keep the constructor's 5 restarts)
            attack.apgd.n_restarts = 1
            attack.apgd_targeted.n_restarts = 1
            attack.fab.n_restarts = 1
            attack.square.n_queries = 5000
            attack.apgd_targeted.n_target_classes = min(STANDARD_TARGETS, self._num_classes - 1)
            attack.fab.n_target_classes = min(STANDARD_TARGETS, self._num_classes - 1)
            attack.verbose = False
            self._packages[key] = attack
        return self._packages[key]

    def _run(self, x, y, parts):
        """The package's evaluation of ``parts`` on x (every image in one package batch)."""
        x_adv, _ = self._package(x.device, parts).run_standard_evaluation(x, y, batch_size=len(x))
        return x_adv.detach()

    def __call__(self, x, y, targeted=False):
        if targeted:
            raise ValueError(f"{type(self).__name__} is an untargeted evaluation")
        x, y = check_inputs(self.model, x, y)
        with eval_mode(self.model), private_rng(x.device):
            self.parts_run = self._allowed(self.parts, x)
            return self._run(x, y, self.parts_run), None

    def extend(self, x, y, x_prior, still_correct):
        """The rest of the ensemble after APGD: FAB-T and Square on the images APGD's ``x_prior`` left correct."""
        x, y = check_inputs(self.model, x, y)
        x_adv = x_prior.detach().clone()
        with eval_mode(self.model), private_rng(x.device):
            self.parts_run = self._allowed(self.parts, x)
            rest = tuple(p for p in self.parts_run if p not in APGD.parts)
            robust = still_correct.nonzero().squeeze(1)
            if len(robust):
                x_adv[robust] = self._run(x[robust], y[robust], rest)
        return x_adv, None


class APGD(AutoAttack):
    """APGD-CE then APGD-T, with AutoAttack's standard settings: a cheaper white-box check."""

    name = "apgd"
    reference = False
    parts = ("apgd-ce", "apgd-t")
    title = "APGD-CE + APGD-T"
    continues = None
