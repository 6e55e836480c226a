"""AutoAttack (Croce & Hein, 2020) through its official package, ``pyautoattack``, with the package's settings for
the standard L-inf evaluation: ``AutoAttack`` (APGD-CE, APGD-T, FAB-T and Square: the field's reference white-box
number) and ``APGD`` (its first two parts, a cheaper check). Both are untargeted. APGD-T's targeted DLR loss needs
four classes, so models with fewer skip it (and FAB-T/APGD-T attack at most ``classes - 1`` targets).
"""
from dataclasses import dataclass

import torch
from pyautoattack import AutoAttack as OfficialAutoAttack
from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

from attacks.base import (ALL_IMAGES, DEFAULT_EPS, Attack, AttackRun, AttackSettings, check_inputs, eval_mode,
                          input_gradients_only, per_sample)
from common import validation
from common.cli import option

STANDARD_TARGETS = 9  # target classes of APGD-T and FAB-T in the standard version
DLR_TARGETED_MIN_CLASSES = 4
PACKAGE_NORMS = {"linf": "Linf", "l2": "L2"}


def private_rng(device):
    """The package seeds torch's global generators; keep the caller's streams as they were."""
    return torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else [])


@dataclass(frozen=True)
class AutoAttackSettings(AttackSettings):
    """AutoAttack's budget in an evaluation (at the protocol's eps, the audit's, the adaptive attacks' APGD): the
    standard version's, unless --quick (a "custom" version)."""

    iterations: int = option(100, "APGD's iterations in AutoAttack, the audit and the adaptive attacks (default "
                                  "{default}, the standard version's)", key="autoattack_iterations", metavar="N")
    square_queries: int = option(5000, "Square's queries in AutoAttack (default {default}, the standard version's)",
                                 key="autoattack_queries", metavar="N")
    quick = {"iterations": 10, "square_queries": 100}

    def validate(self):
        validation.integer(self.iterations, "iterations", minimum=1)
        validation.integer(self.square_queries, "square_queries", minimum=1)


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
    Settings = AutoAttackSettings

    def __init__(self, model, eps=DEFAULT_EPS, seed=0, iterations=None, square_queries=5000):
        super().__init__(model, seed if seed is not None else 0)
        self.eps = validation.number(eps, "eps", minimum=0, maximum=1)
        # APGD's iterations; None (or 100): the standard version's
        self.iterations = None if iterations in (None, 100) else validation.integer(iterations, "iterations",
                                                                                    minimum=1)
        self.square_queries = validation.integer(square_queries, "square_queries", minimum=1)
        self.parts_run = None  # what the last call ran: fewer classes leave out APGD-T
        self._num_classes = None
        self._packages = {}  # (device, parts) -> the package's configured AutoAttack, built once

    def settings(self):
        parts = self.parts_run or self.parts
        standard = parts == AutoAttack.parts and self.iterations is None and self.square_queries == 5000
        return {"eps": self.eps, "version": "standard" if standard else "custom", "attacks": " ".join(parts),
                "package": "pyautoattack", **({"iterations": self.iterations} if self.iterations else {}),
                **({"square_queries": self.square_queries} if self.square_queries != 5000 else {})}

    @classmethod
    def configured(cls, model, eps, config):
        """The attack at ``eps`` with an evaluation's budget (``AutoAttackSettings``) and seed."""
        budget = config.settings_of(AutoAttack.name)
        return cls(model, eps=eps, seed=config.seed, iterations=budget.iterations,
                   square_queries=budget.square_queries)

    @classmethod
    def evaluation_runs(cls, model, config):
        after = cls.continues if cls.continues in config.attacks else None
        return [AttackRun(cls.name, cls.title, cls.configured(model, config.eps, config), images=ALL_IMAGES,
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
            attack.apgd.n_restarts = attack.apgd_targeted.n_restarts = attack.fab.n_restarts = 1
            attack.square.n_queries = self.square_queries
            targets = min(STANDARD_TARGETS, self._num_classes - 1)
            attack.apgd_targeted.n_target_classes = attack.fab.n_target_classes = targets
            attack.verbose = False
            if self.iterations is not None:
                attack.apgd.n_iter = attack.apgd_targeted.n_iter = self.iterations
            self._packages[key] = attack
        return self._packages[key]

    def _run(self, x, y, parts):
        """The package's evaluation of ``parts`` on x (every image in one package batch)."""
        with input_gradients_only(self.model):  # FAB-T backpropagates its loss: no parameter gradient
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
    Settings = None  # AutoAttack's budget (its first two parts)


def apgd_per_image(model, x, y, eps, norm="linf", steps=100, targets=1, seed=0):
    """``(x_adv, fooled)``: APGD-CE, then APGD-T towards each of the ``targets`` classes ranked highest after the
    true one, on the images still correct, at a per-image budget ``eps`` (float or (N,)), through the package's
    single runs batched over every image. ``x_adv``: the fooling point, else the last attempt's best-loss point."""
    x, y = check_inputs(model, x, y)
    eps = per_sample(eps if isinstance(eps, torch.Tensor) else torch.full((len(x),), float(eps)), x, "eps")
    x_adv, fooled = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
    # The package's random start (uniform in the L-inf ball, a random direction on the L2 sphere), drawn once and
    # shared by every image: each image's outcome then depends on that image and eps alone, not on which others
    # share its batch, so that a bisection's "fails at 0.99 eps*" can be checked again on that image by itself.
    generator = torch.Generator(device=x.device).manual_seed(seed)
    if norm == "linf":
        pattern = torch.rand(x.shape[1:], generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
        pattern = pattern / pattern.abs().max()
    else:
        pattern = torch.randn(x.shape[1:], generator=generator, device=x.device, dtype=x.dtype)
        pattern = pattern / pattern.norm()
    with eval_mode(model), private_rng(x.device):
        torch.manual_seed(seed)
        with torch.no_grad():
            logits = model(x)
        fooled = logits.argmax(1) != y
        ranked = logits.sort(dim=1)[1]
        num_classes = logits.shape[1]
        parts = [None] + (list(range(2, min(targets, num_classes - 1) + 2))
                          if num_classes >= DLR_TARGETED_MIN_CLASSES else [])
        for rank in parts:
            todo = (~fooled).nonzero().squeeze(1)
            if not len(todo):
                break
            kind = APGDAttack if rank is None else APGDAttack_targeted
            attack = kind(model, n_iter=steps, norm=PACKAGE_NORMS[norm], eps=eps[todo], seed=seed, device=x.device)
            attack.init_hyperparam(x[todo])
            if rank is not None:
                attack.y_target = ranked[todo, -rank]
            start = (x[todo] + eps[todo] * pattern).clamp(0.0, 1.0)
            _, _, _, found = attack.attack_single_run(x[todo], y[todo], x_init=start)
            found = found.detach().to(x.dtype)
            with torch.no_grad():
                now = model(found).argmax(1) != y[todo]
            x_adv[todo] = found
            fooled[todo] = now
    return x_adv, fooled
