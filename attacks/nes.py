"""Black-box L-inf PGD driven by NES gradient estimates (Ilyas et al. 2018), batched over samples and queries."""
import argparse
from dataclasses import dataclass

import torch

from attacks.base import (BLACK_BOX, DEFAULT_EPS, DEFAULT_STEP, LOSSES, QUERY_SUBSET, Attack, AttackRun,
                          AttackSettings, attack_objective, check_inputs, eval_mode, linf_box, per_sample, row_mask,
                          select_rows, sync_every)
from common import validation
from common.cli import fraction, option
from common.errors import ConfigError

DEFAULT_QUERY_BATCH = {"cuda": 4096}
# A CPU runs SimpleCNN fastest on small batches that stay in cache (measured: 1,600 images/s at 64, 790 at 1024).
FALLBACK_QUERY_BATCH = 64


def validate_query_batch(value):
    """An even number of images, at least one antithetic pair: chunks hold whole pairs."""
    value = validation.integer(value, "query_batch", minimum=2)
    if value % 2:
        raise ConfigError("query_batch", f"must be even (whole antithetic pairs), got {value}")
    return value


def default_query_batch(device):
    """Images per NES forward pass on ``device`` when none is given."""
    return DEFAULT_QUERY_BATCH.get(torch.device(device).type, FALLBACK_QUERY_BATCH)


def sample_schedule(samples, field="samples"):
    """Antithetic pairs per gradient estimate as ``((from_step, pairs), ...)``, from step 0 and increasing in both
    (as in Tramer et al. 2020); an int is one segment."""
    if isinstance(samples, int) and not isinstance(samples, bool):
        return ((0, validation.integer(samples, field, minimum=1)),)
    try:
        schedule = tuple((step, pairs) for step, pairs in samples)
    except (TypeError, ValueError):
        raise ConfigError(field, f"must be a positive integer or (from_step, samples) pairs, got {samples!r}") from None
    if not schedule:
        raise ConfigError(field, "lists no (from_step, samples) pair")
    for step, pairs in schedule:
        validation.integer(step, field, minimum=0)
        validation.integer(pairs, field, minimum=1)
    if schedule[0][0] != 0:
        raise ConfigError(field, f"must start at step 0, got {schedule_text(schedule)}")
    for (step, pairs), (next_step, next_pairs) in zip(schedule, schedule[1:]):
        if next_step <= step or next_pairs <= pairs:
            raise ConfigError(field, f"must increase in both step and samples, got {schedule_text(schedule)}; "
                                     "write it as SAMPLES@STEP, e.g. 100@0 1000@20 20000@40")
    return schedule


def schedule_text(schedule):
    """``100@0 1000@20 20000@40``: the schedule as the command line writes it."""
    return " ".join(f"{pairs}@{step}" for step, pairs in schedule)


def samples_at_step(text):
    """``SAMPLES@STEP`` (one word of a schedule on the command line) -> (step, samples)."""
    samples, _, step = text.partition("@")
    try:
        return int(step), int(samples)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not SAMPLES@STEP (e.g. 1000@20)") from None


def schedule_option(default, help, **kwargs):
    """The option of a sample schedule, written ``SAMPLES@STEP ...`` (kept as written in the parsed arguments, so
    that a command line handed to another process repeats it)."""
    def word(text):
        samples_at_step(text)
        return text
    return option(default, help, type=word, nargs="+", metavar="SAMPLES@STEP",
                  convert=lambda words: tuple(map(samples_at_step, words)), write=lambda value: schedule_text(
                      sample_schedule(value)).split(), **kwargs)


MODES = ("untargeted", "targeted")


@dataclass(frozen=True)
class NESSettings(AttackSettings):
    """NES in an evaluation: one run per mode and momentum (its step is the protocol's ``alpha``)."""

    steps: int = option(50, "NES iterations (default {default})", metavar="N")
    samples: int = option(200, "antithetic pairs per NES gradient estimate (default {default})", metavar="N")
    sigma: float = option(1 / 255, "NES sampling scale (default 1/255)", type=fraction)
    momenta: tuple = option((0.0, 0.9), "NES momentum values in [0, 1) (default {default})", type=float, nargs="+",
                            metavar="M")
    modes: tuple = option(MODES, "untargeted and/or targeted NES (default both)", nargs="+", choices=MODES)
    loss: str = option("ce", "loss NES estimates the gradient of: ce (cross-entropy, default, the original "
                             "repository's) or margin (logit margin)", choices=LOSSES)
    quick = {"steps": 10, "samples": 10}

    def validate(self):
        validation.integer(self.steps, "steps", minimum=1)
        validation.integer(self.samples, "samples", minimum=1)
        validation.number(self.sigma, "sigma", above=0, maximum=1)
        for momentum in validation.distinct(self.momenta, "momenta"):
            validation.number(momentum, "momenta", minimum=0, below=1)
        for mode in validation.distinct(self.modes, "modes"):
            validation.choice(mode, "modes", MODES)
        validation.choice(self.loss, "loss", LOSSES)


class NES(Attack):
    """``x_adv, queries = NES(model, ...)(x, y, targeted=False)``, the model a black box (outputs only).

    Each iteration checks the current point (1 query; a sample that meets its goal stops there), then estimates
    the loss gradient from ``samples`` (or a ``sample_schedule``) antithetic Gaussian pairs, 2 * samples queries,
    ``sum_i (L(x + sigma u_i) - L(x - sigma u_i)) u_i / (2 sigma samples)``; query points are not clipped to
    [0, 1], which would bias the antithetic difference at the box edges. The step is ``alpha * sign`` of
    ``m * previous + (1 - m) * estimate`` (``momentum`` m), projected onto the eps-ball and [0, 1]. Queries stream
    through the model in chunks of ``query_batch`` images; between host syncs (every ``sync_every`` iterations,
    ``attacks.base.SYNC_EVERY``) finished samples stay frozen and uncounted, so counts stay exact. Under a seed the
    result is reproducible for the same inputs, ``query_batch`` and ``sync_every``."""

    name = "nes"
    threat_model = BLACK_BOX
    counts_queries = True
    Settings = NESSettings

    def __init__(self, model, eps=DEFAULT_EPS, alpha=DEFAULT_STEP, steps=50, samples=200, sigma=1 / 255, momentum=0.0,
                 loss="ce", random_start=True, query_batch=None, seed=None, bounds=(0.0, 1.0), sync_every=None):
        super().__init__(model, seed)
        self.sync_every = sync_every
        self.eps = eps if isinstance(eps, torch.Tensor) else validation.number(eps, "eps", minimum=0)
        self.alpha = alpha if isinstance(alpha, torch.Tensor) else validation.number(alpha, "alpha", minimum=0)
        self.steps = validation.integer(steps, "steps", minimum=0)
        self.schedule = sample_schedule(samples)
        self.sigma = validation.number(sigma, "sigma", above=0)
        self.momentum = validation.number(momentum, "momentum", minimum=0, below=1)
        self.loss = validation.choice(loss, "loss", LOSSES)
        self.random_start = random_start
        self.query_batch = None if query_batch is None else validate_query_batch(query_batch)
        self.bounds = bounds

    def settings(self):
        samples = self.schedule[0][1] if len(self.schedule) == 1 else schedule_text(self.schedule)
        return {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "samples": samples,
                "sigma": self.sigma, "momentum": self.momentum, "loss": self.loss, "query_batch": self.query_batch}

    def samples_at(self, step):
        """Antithetic pairs of the gradient estimate at iteration ``step`` (from 0)."""
        return next(pairs for start, pairs in reversed(self.schedule) if step >= start)

    def max_queries(self):
        """Queries of a sample the attack never fools: the clean check, every iteration (1 check + 2 * samples), the
        final check (without a random start, the first iteration's check is the clean check)."""
        if not self.steps:
            return 1
        return 2 + sum(2 * self.samples_at(step) + 1 for step in range(self.steps)) - (not self.random_start)

    @classmethod
    def evaluation_runs(cls, model, config):
        settings = config.settings_of(cls.name)
        return [AttackRun(f"nes_{mode}_m{momentum:g}", f"NES {mode}, momentum {momentum:g}",
                          cls(model, eps=config.eps, alpha=config.alpha, steps=settings.steps,
                              samples=settings.samples, sigma=settings.sigma, momentum=momentum,
                              loss=settings.loss, query_batch=config.query_batch, seed=config.seed),
                          targeted=mode == "targeted", images=QUERY_SUBSET)
                for mode in settings.modes for momentum in settings.momenta]

    def __call__(self, x, y, targeted=False):
        x, y = check_inputs(self.model, x, y)
        n = x.shape[0]
        eps = per_sample(self.eps, x, "eps")
        alpha = per_sample(self.alpha, x, "alpha")
        generator = self.generator(x.device)
        lower, upper = linf_box(x, eps, self.bounds)
        queries = torch.zeros(n, dtype=torch.int64, device=x.device)
        every = sync_every(x.device, self.sync_every)

        with eval_mode(self.model), torch.inference_mode():
            x_adv = x.clone()
            direction = torch.zeros_like(x)
            # `active`: the samples still attacked; `done`: those of them that met their goal since the last sync
            active, done = self._settle(*self._check(x_adv, y, targeted, queries, torch.arange(n, device=x.device)))
            if self.random_start:
                noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
                start = x[active] + noise[active] * select_rows(eps, active)
                x_adv[active] = torch.min(torch.max(start, lower[active]), upper[active])
            for step in range(self.steps):
                if step > 0 or self.random_start:
                    active, done = self._check(x_adv, y, targeted, queries, active, done)
                    if step % every == 0:
                        active, done = self._settle(active, done)
                if active.numel() == 0:
                    break
                samples = self.samples_at(step)
                estimate = self._estimate_gradient(x_adv[active], y[active], targeted, generator, samples)
                queries[active] += 2 * samples * (~done)
                moving = row_mask(~done, estimate)
                blended = torch.where(moving, self.momentum * direction[active] + (1 - self.momentum) * estimate,
                                      direction[active])
                direction[active] = blended
                stepped = torch.min(torch.max(x_adv[active] + select_rows(alpha, active) * blended.sign(),
                                              lower[active]), upper[active])
                x_adv[active] = torch.where(moving, stepped, x_adv[active])
            if active.numel() and self.steps:
                self._check(x_adv, y, targeted, queries, active, done)
        return x_adv, queries

    def _check(self, x_adv, y, targeted, queries, active, done=None):
        """One query per active sample not yet done; returns ``(active, done)``, done updated with the samples
        that now meet their goal."""
        done = torch.zeros_like(active, dtype=torch.bool) if done is None else done
        if active.numel() == 0:
            return active, done
        success = torch.cat([attack_objective(self.model(x_adv[chunk]), y[chunk], targeted)[1]
                             for chunk in active.split(self._query_batch(x_adv.device))])
        queries[active] += ~done
        return active, done | success

    @staticmethod
    def _settle(active, done):
        """The host sync: samples that met their goal leave the working set."""
        keep = ~done
        return active[keep], done[keep]

    def _query_batch(self, device):
        return self.query_batch or default_query_batch(device)

    def _estimate_gradient(self, x, y, targeted, generator, samples):
        """Antithetic NES estimate from ``samples`` pairs per row of x, all pairs streamed in query_batch chunks."""
        flat = x.flatten(1)
        total = torch.zeros_like(flat)
        pairs = x.shape[0] * samples
        pairs_per_chunk = self._query_batch(x.device) // 2
        for start in range(0, pairs, pairs_per_chunk):
            stop = min(start + pairs_per_chunk, pairs)
            owner = torch.arange(start, stop, device=x.device) // samples
            noise = torch.randn((stop - start, flat.shape[1]), generator=generator, device=x.device, dtype=x.dtype)
            center = flat[owner]
            step = self.sigma * noise
            images = torch.cat([center + step, center - step]).view(-1, *x.shape[1:])
            loss, _ = attack_objective(self.model(images), y[owner].repeat(2), targeted, self.loss)
            plus, minus = loss.chunk(2)
            total.index_add_(0, owner, (plus - minus).to(x.dtype).unsqueeze(1) * noise)
        return (total / (2 * self.sigma * samples)).view_as(x)
