"""Learning-rate schedules of the recipe: the original per-epoch StepLR, and the per-step one-cycle and cosine
schedules that converge in few epochs (Smith & Topin 2019; Loshchilov & Hutter 2017)."""
import torch

SCHEDULES = ("step", "onecycle", "cosine")
# One-cycle: the rate warms up from lr/25 to lr over the first 20% of the steps, then anneals (cosine) to lr/1e4.
# Momentum stays at the recipe's (no momentum cycling), so that the recipe's momentum means one thing.
ONECYCLE_WARMUP = 0.2


class Schedule:
    """A scheduler and when it steps: ``after_step()`` after every SGD step, ``after_epoch()`` after every epoch;
    each calls the scheduler only where this schedule steps then. Its ``state_dict`` goes into the checkpoint."""

    def __init__(self, optimizer, recipe, steps_per_epoch):
        self.per_step = recipe.schedule != "step"
        total = recipe.epochs * steps_per_epoch
        if recipe.schedule == "step":
            self.scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=recipe.lr_step,
                                                             gamma=recipe.lr_gamma)
        elif recipe.schedule == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total,
                                                                 pct_start=ONECYCLE_WARMUP, cycle_momentum=False)
        else:
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)

    def after_step(self):
        if self.per_step:
            self.scheduler.step()

    def after_epoch(self):
        if not self.per_step:
            self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state)
