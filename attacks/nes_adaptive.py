"""The gradient-free attack that broke k-winners-take-all (Tramer, Carlini, Brendel & Madry, NeurIPS 2020,
"On Adaptive Attacks to Adversarial Example Defenses"), as a configuration of the project's NES.

Their settings at eps 8/255: sigma 8/255, margin loss, 100 -> 1,000 -> 20,000 antithetic samples from steps 0, 20
and 40, 100 signed steps of 0.01. Here sigma and the step are the same fractions of the evaluation's eps, so the
attack scales with the data set's budget; steps and schedule are evaluation settings so that a CPU can afford them.
"""
from dataclasses import dataclass

from attacks.base import QUERY_SUBSET, AttackRun, AttackSettings
from attacks.nes import NES, sample_schedule, schedule_option, schedule_text
from common import validation
from common.cli import option

PAPER_EPS = 8 / 255
SIGMA_PER_EPS = 1.0  # sigma 8/255 at eps 8/255
ALPHA_PER_EPS = 0.01 / PAPER_EPS
PAPER_STEPS = 100
PAPER_SCHEDULE = ((0, 100), (20, 1000), (40, 20000))


@dataclass(frozen=True)
class NESAdaptiveSettings(AttackSettings):
    """nes_adaptive's steps and sample schedule (also where the audit runs it as an adaptive attack)."""

    steps: int = option(PAPER_STEPS, "nes_adaptive's signed steps (default {default})", key="adaptive_steps",
                        metavar="N")
    schedule: tuple = schedule_option(
        PAPER_SCHEDULE, lambda: "nes_adaptive's antithetic pairs per estimate from each step on, increasing (default "
                                "{default}, Tramer et al. 2020; --quick: "
                                f"{schedule_text(NESAdaptiveSettings.quick['schedule'])})", key="adaptive_schedule")
    quick = {"steps": 10, "schedule": ((0, 5), (5, 20))}

    def validate(self):
        validation.integer(self.steps, "steps", minimum=1)
        sample_schedule(self.schedule, "schedule")


class NESAdaptive(NES):
    """``NESAdaptive(model, eps)``: NES with the margin loss, sigma and step scaled to eps, no momentum and the
    paper's growing sample schedule; every other behaviour (query counting, early stop, projection) is NES's."""

    name = "nes_adaptive"
    Settings = NESAdaptiveSettings

    def __init__(self, model, eps=PAPER_EPS, steps=PAPER_STEPS, samples=PAPER_SCHEDULE, query_batch=None, seed=None):
        super().__init__(model, eps=eps, alpha=ALPHA_PER_EPS * eps, steps=steps, samples=samples,
                         sigma=SIGMA_PER_EPS * eps, momentum=0.0, loss="margin", query_batch=query_batch, seed=seed)

    @classmethod
    def configured(cls, model, eps, config):
        """The attack at ``eps`` with ``config``'s settings for it, seed and query batch."""
        settings = config.settings_of(cls.name)
        return cls(model, eps=eps, steps=settings.steps, samples=settings.schedule, query_batch=config.query_batch,
                   seed=config.seed)

    @classmethod
    def evaluation_runs(cls, model, config):
        attack = cls.configured(model, config.eps, config)
        return [AttackRun(cls.name, f"NES adaptive (margin, {schedule_text(attack.schedule)} samples@step)",
                          attack, images=QUERY_SUBSET)]
