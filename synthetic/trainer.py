"""Full-batch training of many depth-2 ReLU networks at once (logistic loss, dropout masks, ``l1`` * sum(h)), each
until its data loss without dropout is below ``loss_target``, not for a step budget: (w/a, b/a, a v) leaves N unchanged
and divides sum(h) by a, so an L1 run never settles and a budget would decide the result. A run depends on its seed
alone, not on which runs share the batch."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from common import validation
from models.relu_net import StackedReLUNet
from synthetic.data import sample_sphere_data

OPTIMIZERS = {
    "ngd": "normalised gradient descent, step lr / objective",
    "gd": "plain gradient descent, step lr (the original's)",
}
STOP_REASONS = ("running", "target", "stalled", "max_steps", "diverged")
_RUNNING, _TARGET, _STALLED, _MAX_STEPS, _DIVERGED = range(len(STOP_REASONS))
CONVERGED = STOP_REASONS[_TARGET]
# Dropout masks come from their own generator, so they never reuse the stream that drew the data.
DROPOUT_SEED_OFFSET = 1_000_003
# Every this many steps the host looks at the runs: finished ones leave the batch, dead units leave the runs.
COMPACT_EVERY = 10


@dataclass(frozen=True)
class TrainSettings:
    """Field names are those of ``SyntheticConfig``, so a ConfigError names the same setting."""

    lr: float = 0.03
    steps: int = 20000  # cap on gradient steps
    optimizer: str = "ngd"  # "ngd": step lr / objective (normalised GD); "gd": constant step lr
    loss_target: float = 1e-7  # converged once the data loss is below this
    stall_tol: float = 1e-6  # ... stalled once the best objective improved by less than this, relatively,
    check_every: int = 100  # ... over this many steps

    def validate(self):
        validation.choice(self.optimizer, "optimizer", OPTIMIZERS)
        validation.number(self.lr, "lr", above=0)
        validation.integer(self.steps, "steps", minimum=1)
        validation.number(self.loss_target, "loss_target", above=0)
        validation.number(self.stall_tol, "stall_tol", minimum=0)
        validation.integer(self.check_every, "check_every", minimum=1)


@dataclass(frozen=True)
class RunSpec:
    """One training run: its seed, its coefficient on sum(h), and its dropout probability."""

    seed: int
    l1: float = 0.0
    dropout: float = 0.0


@dataclass
class RunBatch:
    """Everything the trainer needs for R runs, stacked along the first axis."""

    specs: list
    x: torch.Tensor  # (R, m, d)
    y: torch.Tensor  # (R, m)
    net: StackedReLUNet
    l1: torch.Tensor  # (R,)
    dropout_generators: list


@dataclass
class TrainOutcome:
    net: StackedReLUNet
    steps: list  # updates applied, per run
    stop_reasons: list  # one of STOP_REASONS per run

    @property
    def converged(self):
        return [reason == CONVERGED for reason in self.stop_reasons]


def prepare_runs(specs, d, m, width, device="cpu", dtype=torch.float32):
    """Data and initialisation per run from its seed (runs sharing a seed share data and initial weights)."""
    generators = [torch.Generator().manual_seed(spec.seed) for spec in specs]
    data = [sample_sphere_data(d, m, generator, dtype) for generator in generators]
    net = StackedReLUNet.initialise(d, width, generators)
    return RunBatch(
        specs=list(specs),
        x=torch.stack([sample.x for sample in data]).to(device),
        y=torch.stack([sample.y for sample in data]).to(device),
        net=StackedReLUNet(*(p.to(device=device, dtype=dtype) for p in (net.w, net.b, net.v))),
        l1=torch.tensor([spec.l1 for spec in specs], device=device, dtype=dtype),
        dropout_generators=[torch.Generator(device=device).manual_seed(spec.seed + DROPOUT_SEED_OFFSET)
                            for spec in specs],
    )


def subset(batch, index):
    """Runs ``index`` (a list of ints) of a batch."""
    index_tensor = torch.tensor(index, device=batch.x.device, dtype=torch.long)
    return RunBatch(specs=[batch.specs[i] for i in index], x=batch.x[index_tensor], y=batch.y[index_tensor],
                    net=batch.net.select(index_tensor), l1=batch.l1[index_tensor],
                    dropout_generators=[batch.dropout_generators[i] for i in index])


def dropout_masks(probabilities, generators, shape, device, dtype=torch.float32):
    """Inverted-dropout masks (R, m, width), or None when no run drops units (host-side ``probabilities``: no sync)."""
    if not any(p > 0 for p in probabilities):
        return None
    masks = []
    for p, generator in zip(probabilities, generators):
        if p > 0:
            keep = torch.rand(shape, generator=generator, device=device) >= p
            masks.append(keep.to(dtype) / (1 - p))
        else:
            masks.append(torch.ones(shape, device=device, dtype=dtype))
    return torch.stack(masks)


def objective_and_gradients(net, x, y, l1, mask=None):
    """Per-run data loss (no dropout), objective and its gradients (w, b, v), by hand."""
    pre = net.pre_activations(x)
    fit_loss, objective, grad_pre, grad_v = _objective_and_pre_gradients(
        pre, net.v, y, l1, mask, torch.empty_like(pre), torch.empty_like(pre))
    return fit_loss, objective, (torch.bmm(grad_pre.transpose(1, 2), x), grad_pre.sum(1), grad_v)


def _objective_and_pre_gradients(pre, v, y, l1, mask, hidden, grad_pre):
    """``objective_and_gradients`` with respect to ``pre`` (R, m, width) and ``v``, into the buffers ``hidden`` and
    ``grad_pre``: on a CPU a fresh tensor this large costs more in page faults than the arithmetic on it."""
    m = pre.shape[1]
    torch.clamp_min(pre, 0.0, out=hidden)  # relu
    objective = l1 * hidden.sum((1, 2))
    margins = y * StackedReLUNet.output_of(v, hidden)
    fit_loss = F.softplus(-margins).mean(1)  # what the fit target is about: the network as it will be measured
    if mask is None:
        dropped, neg_margins, data_loss = hidden, -margins, fit_loss
    else:
        dropped = hidden.mul_(mask)
        neg_margins = -y * StackedReLUNet.output_of(v, dropped)
        data_loss = F.softplus(neg_margins).mean(1)
    objective += data_loss

    grad_out = (-y / m) * torch.sigmoid(neg_margins)  # d data_loss / d N(x_i)
    torch.mul(grad_out.unsqueeze(2), v.unsqueeze(1), out=grad_pre)
    if mask is not None:
        grad_pre.mul_(mask)
    grad_pre.add_(l1.view(-1, 1, 1))
    # relu's own backward (relu'(0) = 0), in place: several times faster here than masked_fill_ or torch.where
    torch.ops.aten.threshold_backward.grad_input(grad_pre, pre, 0.0, grad_input=grad_pre)
    grad_v = torch.bmm(grad_out.unsqueeze(1), dropped).squeeze(1)  # row-vector form, as in output_of
    return fit_loss, objective, grad_pre, grad_v


def _step_size(settings, objective, frozen):
    if settings.optimizer == "ngd":
        # Normalised GD: on separable data the loss decays like exp(-margin); dividing by it keeps
        # the steps from vanishing, so the margin keeps growing (and the max-margin bias is kept).
        size = settings.lr / objective
    else:
        size = torch.full_like(objective, settings.lr)
    return torch.where(frozen, 0.0, size)


class _WorkingSet:
    """The runs still training, stepped in pre-activation coordinates P = x w^T + b: a step moves P by -s G grad_pre
    with G = x x^T + 1 1^T, one (m, m) product where w's gradient and P take two (m, d) ones (x (x^T .) when d < m/2).
    w, b are recovered on write-back from ``moved`` = sum of s grad_pre. Units dead on every point get no gradient
    ever (relu'(0) = 0) and are left out; ``units`` (R, k) maps working units to the original ones."""

    def __init__(self, batch):
        runs, width = batch.net.runs, batch.net.w.shape[1]
        device = batch.x.device
        self.active = list(range(runs))
        self.batch = subset(batch, self.active)
        self.initial = self.batch.net
        x = self.batch.x
        m, d = x.shape[1:]
        self.gram = torch.baddbmm(x.new_ones(()), x, x.transpose(1, 2)) if m <= 2 * d else None
        self.pre = self.initial.pre_activations(x)
        self.v = self.initial.v.clone()
        self.moved = torch.zeros_like(self.pre)
        self.units = torch.arange(width, device=device).expand(runs, width)
        self.steps = torch.zeros(runs, dtype=torch.long, device=device)
        self.reason = torch.full((runs,), _RUNNING, dtype=torch.long, device=device)
        self.best = torch.full((runs,), float("inf"), device=device, dtype=batch.x.dtype)
        self.previous_best = self.best.clone()
        self._scratch = None

    def scratch(self):
        """Buffers for ``_objective_and_pre_gradients``, reused from step to step while the shapes stay."""
        if self._scratch is None or self._scratch[0].shape != self.pre.shape:
            self._scratch = (torch.empty_like(self.pre), torch.empty_like(self.pre))
        return self._scratch

    def advance(self, grad_pre, grad_v, size):
        """One gradient step of size ``size`` (R,) from the gradients at the current iterate (consumed)."""
        step = grad_pre.mul_(size.view(-1, 1, 1))
        self.moved.add_(step)
        if self.gram is not None:
            self.pre.baddbmm_(self.gram, step, alpha=-1)
        else:
            x = self.batch.x
            self.pre.baddbmm_(x, torch.bmm(x.transpose(1, 2), step), alpha=-1).sub_(step.sum(1, keepdim=True))
        self.v.sub_(grad_v.mul_(size.view(-1, 1)))

    def write_back(self, final):
        """Copy the working units' current parameters into the full-size ``final`` networks."""
        rows = torch.tensor(self.active, device=self.units.device).unsqueeze(1)
        final.w[rows, self.units] = torch.baddbmm(self.initial.w, self.moved.transpose(1, 2), self.batch.x, alpha=-1)
        final.b[rows, self.units] = self.initial.b - self.moved.sum(1)
        final.v[rows, self.units] = self.v

    def keep_runs(self, positions):
        self.active = [self.active[i] for i in positions]
        self.batch = subset(self.batch, positions)
        index = torch.tensor(positions, device=self.units.device)
        self.initial = self.initial.select(index)
        if self.gram is not None:
            self.gram = self.gram[index]
        for name in ("pre", "v", "moved", "units", "steps", "reason", "best", "previous_best"):
            setattr(self, name, getattr(self, name)[index])

    def drop_dead_units(self, final):
        """Leave out units dead on every point, written back to ``final`` first (not with dropout: masks span all)."""
        if any(spec.dropout > 0 for spec in self.batch.specs):
            return
        alive = (self.pre > 0).any(1)
        width = max(int(alive.sum(1).max()), 1)
        if width == alive.shape[1]:
            return
        self.write_back(final)
        order = torch.argsort(alive.to(torch.int8), dim=1, descending=True, stable=True)[:, :width]
        rows = torch.arange(len(self.active), device=order.device).unsqueeze(1)
        self.initial = StackedReLUNet(*(p[rows, order] for p in (self.initial.w, self.initial.b, self.initial.v)))
        by_point = order.unsqueeze(1).expand(-1, self.pre.shape[1], -1)
        self.pre, self.moved = self.pre.gather(2, by_point), self.moved.gather(2, by_point)
        self.v = self.v.gather(1, order)
        self.units = self.units.gather(1, order)


def train_stacked(batch, settings, progress=True):
    """Each run's last iterate (a converged run's first below the target) and why it stopped."""
    settings.validate()
    runs, width = batch.net.runs, batch.net.w.shape[1]
    device = batch.x.device
    final = batch.net.select(torch.arange(runs, device=device))
    steps_all = torch.zeros(runs, dtype=torch.long, device=device)
    reasons_all = torch.full((runs,), _RUNNING, dtype=torch.long, device=device)
    mask_shape = (batch.x.shape[1], width)
    state = _WorkingSet(batch)

    bar = tqdm(total=runs, desc="training runs", unit="run", disable=not progress, leave=False)
    for step in range(1, settings.steps + 1):
        work = state.batch
        mask = dropout_masks([spec.dropout for spec in work.specs], work.dropout_generators, mask_shape, device,
                             work.x.dtype)
        fit_loss, objective, grad_pre, grad_v = _objective_and_pre_gradients(state.pre, state.v, work.y, work.l1,
                                                                             mask, *state.scratch())
        running = state.reason == _RUNNING
        state.best = torch.where(running, torch.minimum(state.best, objective), state.best)
        diverged = running & ~torch.isfinite(objective)
        reached = running & (fit_loss < settings.loss_target)
        state.reason = torch.where(diverged, _DIVERGED, torch.where(reached, _TARGET, state.reason))
        frozen = state.reason != _RUNNING
        state.advance(grad_pre, grad_v, _step_size(settings, objective, frozen))
        state.steps += (~frozen).long()

        check = step % settings.check_every == 0 or step == settings.steps
        if not check and step % COMPACT_EVERY:
            continue
        if check:
            previous = state.previous_best
            stalled = ~frozen & torch.isfinite(previous) & (previous - state.best <= settings.stall_tol * previous)
            state.reason = torch.where(stalled, _STALLED, state.reason)
            if step == settings.steps:
                state.reason = torch.where(state.reason == _RUNNING, _MAX_STEPS, state.reason)
            state.previous_best = state.best

        keep = (state.reason == _RUNNING).tolist()  # the only host sync, once per COMPACT_EVERY steps
        bar.set_postfix(step=step)
        if not all(keep):
            state.write_back(final)
            index = torch.tensor(state.active, device=device)
            steps_all[index], reasons_all[index] = state.steps, state.reason
            bar.update(keep.count(False))
            if not any(keep):
                break
            state.keep_runs([i for i, still in enumerate(keep) if still])
        state.drop_dead_units(final)
    bar.close()
    return TrainOutcome(final, steps_all.tolist(), [STOP_REASONS[code] for code in reasons_all.tolist()])


def final_statistics(net, x, y, l1):
    """Per-run numbers of the trained networks on their training points, in eval mode (no dropout)."""
    with torch.no_grad():
        hidden = torch.relu(net.pre_activations(x))
        margins = y * net.output(hidden)
        data_loss = F.softplus(-margins).mean(1)
        min_margin = margins.min(1).values
        return {
            "final_loss": data_loss,
            "final_objective": data_loss + l1 * hidden.sum((1, 2)),
            "train_acc": (margins > 0).float().mean(1),
            "min_margin": min_margin,
            "normalized_margin": min_margin / net.squared_norm(),
            "activation_sparsity": (hidden == 0).float().mean((1, 2)),
            "dead_units": (hidden == 0).all(1).sum(1),
        }
