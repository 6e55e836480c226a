"""White-box projected gradient descent (L-inf and L2), batched over samples."""
import contextlib
from dataclasses import dataclass

import torch

from attacks.base import (ALL_IMAGES, DEFAULT_EPS, DEFAULT_STEP, TINY, Attack, AttackRun, AttackSettings,
                          attack_objective, check_inputs, eval_mode, flat_norm, linf_box, per_sample, row_mask,
                          select_rows, sync_every)
from common import validation
from common.cli import option

NORMS = ("linf", "l2")


@dataclass(frozen=True)
class PGDSettings(AttackSettings):
    """PGD's settings in an evaluation (its step is the protocol's ``alpha``); the eps* bisection's APGD and the
    checks' PGD runs take its steps too."""

    steps: int = option(50, "PGD steps; also the eps* bisection's APGD steps (default {default})", key="steps",
                        metavar="N")
    restarts: int = option(1, "PGD random restarts (default {default})", key="restarts", metavar="N")
    quick = {"steps": 10}

    def validate(self):
        validation.integer(self.steps, "steps", minimum=1)
        validation.integer(self.restarts, "restarts", minimum=1)


class PGD(Attack):
    """Projected gradient descent: sign (L-inf) or normalised (L2) gradient steps of ``alpha``, projected onto the
    eps-ball and ``bounds`` (None: unbounded); ``eps`` and ``alpha`` may be per-sample tensors (N,). Returns
    ``(x_adv, None)``. A sample that meets its goal is frozen there; restarts attack the samples still unsuccessful,
    each keeping its successful point or else its highest-loss end point. Adversarial training sets
    ``stop_on_success=False`` (the inner maximisation wants the highest loss) and ``keep_mode=True`` (a dropout
    arm's attack ascends the train-mode loss). ``sync_every`` (``attacks.base.SYNC_EVERY``) changes speed only.
    """

    name = "pgd"
    Settings = PGDSettings

    def __init__(self, model, eps=DEFAULT_EPS, alpha=DEFAULT_STEP, steps=50, random_start=True, restarts=1,
                 norm="linf", seed=None, bounds=(0.0, 1.0), sync_every=None, stop_on_success=True, keep_mode=False):
        super().__init__(model, seed)
        self.sync_every = sync_every
        self.norm = validation.choice(norm, "norm", NORMS)
        self.eps = eps if isinstance(eps, torch.Tensor) else validation.number(eps, "eps", minimum=0)
        self.alpha = alpha if isinstance(alpha, torch.Tensor) else validation.number(alpha, "alpha", minimum=0)
        self.steps = validation.integer(steps, "steps", minimum=0)
        self.restarts = validation.integer(restarts, "restarts", minimum=1)
        self.random_start = random_start
        self.bounds = bounds
        self.stop_on_success = stop_on_success
        self.keep_mode = keep_mode

    def settings(self):
        return {"norm": self.norm, "eps": self.eps, "alpha": self.alpha, "steps": self.steps,
                "restarts": self.restarts, "random_start": self.random_start}

    @classmethod
    def evaluation_runs(cls, model, config):
        settings = config.settings_of(cls.name)
        return [AttackRun("pgd", "PGD", cls(model, eps=config.eps, alpha=config.alpha, steps=settings.steps,
                                            restarts=settings.restarts, seed=config.seed), images=ALL_IMAGES)]

    def __call__(self, x, y, targeted=False):
        x, y = check_inputs(self.model, x, y)
        eps = per_sample(self.eps, x, "eps")
        alpha = per_sample(self.alpha, x, "alpha")
        generator = self.generator(x.device)
        result = x.clone()
        best_loss = torch.full((x.shape[0],), -float("inf"), device=x.device, dtype=x.dtype)
        with contextlib.nullcontext() if self.keep_mode else eval_mode(self.model):
            pending = self._not_yet_adversarial(x, y, targeted)
            for _ in range(self.restarts):
                if pending.numel() == 0:
                    break
                x_end, succeeded, loss = self._attack_once(
                    x[pending], y[pending], select_rows(eps, pending), select_rows(alpha, pending), targeted, generator,
                    keep_loss=self.restarts > 1)
                if succeeded is None:
                    result[pending] = x_end
                    break
                better = succeeded | (loss > best_loss[pending])
                result[pending[better]] = x_end[better]
                best_loss[pending[better]] = loss[better]
                pending = pending[~succeeded]
        return result, None

    def _not_yet_adversarial(self, x, y, targeted):
        """Indices of samples to attack: a random start would move an already adversarial x away from its successful
        point, so x itself is checked first (without one, the first step checks it)."""
        if not self.random_start or not self.stop_on_success:
            return torch.arange(x.shape[0], device=x.device)
        with torch.no_grad():
            _, success = attack_objective(self.model(x), y, targeted)
        return (~success).nonzero().squeeze(1)

    def _attack_once(self, x, y, eps, alpha, targeted, generator, keep_loss):
        """One restart. Returns (x_adv, succeeded, loss); the last two only when ``keep_loss``."""
        result = x.clone()
        # The working set: rows still attacked, with `index` mapping them back into the batch and `done` marking
        # those that met their goal since the last sync (frozen where they met it).
        work = {"index": torch.arange(x.shape[0], device=x.device), "x": x, "y": y, "eps": eps, "alpha": alpha,
                "x_adv": self._start(x, eps, generator), "done": torch.zeros(x.shape[0], dtype=torch.bool,
                                                                              device=x.device)}
        if self.norm == "linf":
            work["lower"], work["upper"] = linf_box(x, eps, self.bounds)
        succeeded = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        every = sync_every(x.device, self.sync_every)

        for step in range(1, self.steps + 1):
            x_adv = work["x_adv"].requires_grad_(True)
            with torch.enable_grad():
                loss, success = attack_objective(self.model(x_adv), work["y"], targeted)
                (grad,) = torch.autograd.grad(loss.sum(), x_adv)
            x_adv = x_adv.detach()
            if self.stop_on_success:
                work["done"] = work["done"] | success
            work["x_adv"] = torch.where(row_mask(work["done"], x_adv), x_adv, self._step(x_adv, grad, work))
            if step % every == 0:
                work = self._settle(work, result, succeeded)
                if work["index"].shape[0] == 0:
                    break
        work = self._settle(work, result, succeeded)
        result[work["index"]] = work["x_adv"]

        if not keep_loss:
            return result, None, None
        final_loss = torch.full((x.shape[0],), float("inf"), device=x.device, dtype=x.dtype)
        if work["index"].shape[0]:
            with torch.no_grad():
                loss, success = attack_objective(self.model(work["x_adv"]), work["y"], targeted)
            final_loss[work["index"]] = loss.to(x.dtype)
            succeeded[work["index"]] = success
        return result, succeeded, final_loss

    @staticmethod
    def _settle(work, result, succeeded):
        """The host sync: samples that met their goal leave the working set, their successful point kept."""
        done = work["done"]
        if not done.any():
            return work
        finished = work["index"][done]
        result[finished] = work["x_adv"][done]
        succeeded[finished] = True
        return {key: select_rows(value, ~done) for key, value in work.items()}

    def _clip(self, x_adv):
        return x_adv if self.bounds is None else x_adv.clamp(*self.bounds)

    def _start(self, x, eps, generator):
        if not self.random_start:
            return x.clone()
        if self.norm == "linf":
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
            return self._clip(x + noise * eps)
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        radius = row_mask(torch.rand((x.shape[0],), generator=generator, device=x.device, dtype=x.dtype), x) * eps
        return self._clip(x + direction / flat_norm(direction).clamp_min(TINY) * radius)

    def _step(self, x_adv, grad, work):
        if self.norm == "linf":
            return torch.min(torch.max(x_adv + work["alpha"] * grad.sign(), work["lower"]), work["upper"])
        x_adv = x_adv + work["alpha"] * grad / flat_norm(grad).clamp_min(TINY)
        delta = x_adv - work["x"]
        shrink = (work["eps"] / flat_norm(delta).clamp_min(TINY)).clamp(max=1.0)
        # Clipping to the box after the ball projection only moves coordinates towards x, so it stays in the ball.
        return self._clip(work["x"] + delta * shrink)
