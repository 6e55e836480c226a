"""Full-batch training of many independent depth-2 ReLU networks at once (the synthetic experiment).

Every run (one mode, strength and seed) has its own data, initialisation and
dropout stream, all derived from its seed, so a run's result does not depend
on which other runs share the batch. The R runs are trained as one batched
computation: weights stacked along a run axis, gradients written out by hand,
stopping conditions tracked on the device and read by the host only every
``COMPACT_EVERY`` steps, when finished runs leave the batch. The trainer steps the
pre-activations themselves rather than the first-layer weights (see ``_WorkingSet``),
which takes one matrix product per step instead of two.
"""
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm import tqdm

from attacks.minimal_l2 import flip_measures
from data.sphere import sample_sphere_data
from models.relu_net import StackedReLUNet

OPTIMIZERS = ("ngd", "gd")
MODES = ("l1", "dropout")
STOP_REASONS = ("running", "loss", "stalled", "max_steps", "diverged")
_RUNNING, _LOSS, _STALLED, _MAX_STEPS, _DIVERGED = range(len(STOP_REASONS))
# Dropout masks come from their own generator, so they never reuse the stream that drew the data.
DROPOUT_SEED_OFFSET = 1_000_003
# Every this many steps the host looks at the runs: finished ones leave the batch, dead units leave the runs.
COMPACT_EVERY = 10
# Flip searches stop at this multiple of the data norm sqrt(d); a point not flipped by then counts as never flipped.
FLIP_SEARCH_LIMIT = 2.0


# Normalised GD at 0.1 overshoots (and oscillates chaotically) once the loss is tiny; 0.03 reaches 1e-7 steadily.
DEFAULT_LR = {"ngd": 0.03, "gd": 0.1}


@dataclass(frozen=True)
class TrainSettings:
    lr: float = DEFAULT_LR["ngd"]
    max_steps: int = 20000
    optimizer: str = "ngd"  # "ngd": step lr / objective (normalised GD); "gd": constant step lr
    loss_tol: float = 1e-7  # stop once the data (logistic) loss is below this
    stall_tol: float = 1e-6  # ... or once the best objective improved by less than this, relatively,
    check_every: int = 100  # ... over this many steps


@dataclass
class RunSpec:
    mode: str
    strength: float
    seed: int

    @property
    def l1(self):
        return self.strength if self.mode == "l1" else 0.0

    @property
    def dropout(self):
        return self.strength if self.mode == "dropout" else 0.0


@dataclass
class RunBatch:
    """Everything the trainer needs for R runs, stacked along the first axis."""

    specs: list
    x: torch.Tensor  # (R, m, d)
    y: torch.Tensor  # (R, m)
    net: StackedReLUNet
    l1: torch.Tensor  # (R,)
    dropout: torch.Tensor  # (R,)
    dropout_generators: list = field(default_factory=list)


@dataclass
class TrainOutcome:
    net: StackedReLUNet
    steps: torch.Tensor  # (R,) updates applied
    stop_reasons: list  # one of STOP_REASONS per run


def prepare_runs(specs, d, m, width, device="cpu", dtype=torch.float32):
    """Data and initialisation per run from its seed (runs sharing a seed share data and initial weights)."""
    xs, ys, generators = [], [], []
    for spec in specs:
        generator = torch.Generator().manual_seed(spec.seed)
        data = sample_sphere_data(d, m, generator, dtype)
        xs.append(data.x)
        ys.append(data.y)
        generators.append(generator)
    net = StackedReLUNet.initialise(d, width, generators)
    net = StackedReLUNet(*(p.to(device=device, dtype=dtype) for p in (net.w, net.b, net.v)))
    dropout_generators = [torch.Generator(device=device).manual_seed(spec.seed + DROPOUT_SEED_OFFSET)
                          for spec in specs]
    return RunBatch(
        specs=list(specs), x=torch.stack(xs).to(device), y=torch.stack(ys).to(device), net=net,
        l1=torch.tensor([spec.l1 for spec in specs], device=device, dtype=dtype),
        dropout=torch.tensor([spec.dropout for spec in specs], device=device, dtype=dtype),
        dropout_generators=dropout_generators)


def subset(batch, index):
    """Runs ``index`` (a list of ints) of a batch."""
    index_tensor = torch.tensor(index, device=batch.x.device, dtype=torch.long)
    return RunBatch(
        specs=[batch.specs[i] for i in index], x=batch.x[index_tensor], y=batch.y[index_tensor],
        net=batch.net.select(index_tensor), l1=batch.l1[index_tensor], dropout=batch.dropout[index_tensor],
        dropout_generators=[batch.dropout_generators[i] for i in index])


def dropout_masks(probabilities, generators, shape, device, dtype=torch.float32):
    """Inverted-dropout masks (R, m, width) with keep-scaling 1/(1-p), or None when no run drops units.

    ``probabilities`` is a host-side list, so building masks never waits for the device.
    """
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
    """Per-run data loss, objective and its gradients (w, b, v), by hand.

    data loss = mean_i softplus(-y_i N(x_i)) (logistic), objective = data loss
    + l1 * sum|h| over points and units (h = hidden activations before dropout;
    ``mask`` applies dropout between h and the output layer).
    """
    pre = net.pre_activations(x)
    data_loss, objective, grad_pre, grad_v = _objective_and_pre_gradients(
        pre, net.v, y, l1, mask, torch.empty_like(pre), torch.empty_like(pre))
    return data_loss, objective, (torch.bmm(grad_pre.transpose(1, 2), x), grad_pre.sum(1), grad_v)


def _objective_and_pre_gradients(pre, v, y, l1, mask, hidden, grad_pre):
    """As ``objective_and_gradients``, from the pre-activations ``pre`` (R, m, width); the gradients are
    with respect to ``pre`` and ``v``. ``hidden`` and ``grad_pre`` are buffers shaped like ``pre`` for the
    (dropped) hidden activations and the returned ``grad_pre``: on a CPU, a fresh tensor this large costs
    more in page faults than the arithmetic done on it."""
    m = pre.shape[1]
    torch.clamp_min(pre, 0.0, out=hidden)  # relu
    objective = l1 * hidden.sum((1, 2))
    dropped = hidden if mask is None else hidden.mul_(mask)
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
    return data_loss, objective, grad_pre, grad_v


def _step_size(settings, objective, frozen):
    if settings.optimizer == "ngd":
        # Normalised GD: on separable data the loss decays like exp(-margin); dividing by it keeps
        # the steps from vanishing, so the margin keeps growing (and the max-margin bias is kept).
        size = settings.lr / objective
    else:
        size = torch.full_like(objective, settings.lr)
    return torch.where(frozen, 0.0, size)


class _WorkingSet:
    """The runs still training, in pre-activation coordinates, possibly with some (permanently) dead
    hidden units left out.

    Every gradient step moves (w, b) by -s (grad_pre^T x, 1^T grad_pre), with grad_pre the gradient
    with respect to the pre-activations P = x w^T + b (m, width). So P itself moves by -s G grad_pre with
    G = x x^T + 1 1^T, one (m, m) x (m, width) product per step where recomputing P from w and forming
    w's gradient take two (m, d) x (d, width) ones; w and b are recovered only when written back, from
    the running sum ``moved`` = sum of s grad_pre: w = w0 - moved^T x, b = b0 - 1^T moved. Same iterates,
    up to rounding. (When d < m / 2, G is applied in factored form, x (x^T grad_pre), which is cheaper.)

    ``units`` (R, k) maps the k working units of each run to its original units. A unit whose
    pre-activation is <= 0 on every training point gets zero gradient from the data loss and from
    the L1 term (relu'(0) = 0), and so stays dead forever; leaving it out changes no arithmetic
    result but its order of summation, and makes strongly L1-regularised runs, where almost every
    unit dies, far cheaper.
    """

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
        self.best_moved, self.best_v = self.moved.clone(), self.v.clone()
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

    def keep_best(self, improved):
        # lerp with weight exactly 1 or 0 copies or keeps exactly, in place (no allocation, no host sync)
        weight = improved.to(self.v.dtype)
        self.best_moved.lerp_(self.moved, weight.view(-1, 1, 1))
        self.best_v.lerp_(self.v, weight.view(-1, 1))

    def write_back(self, final):
        """Copy the best iterates' working units into the full-size ``final`` networks."""
        rows = torch.tensor(self.active, device=self.units.device).unsqueeze(1)
        final.w[rows, self.units] = torch.baddbmm(self.initial.w, self.best_moved.transpose(1, 2), self.batch.x,
                                                  alpha=-1)
        final.b[rows, self.units] = self.initial.b - self.best_moved.sum(1)
        final.v[rows, self.units] = self.best_v

    def keep_runs(self, positions):
        self.active = [self.active[i] for i in positions]
        self.batch = subset(self.batch, positions)
        index = torch.tensor(positions, device=self.units.device)
        self.initial = self.initial.select(index)
        if self.gram is not None:
            self.gram = self.gram[index]
        self.pre, self.v, self.moved = self.pre[index], self.v[index], self.moved[index]
        self.best_moved, self.best_v = self.best_moved[index], self.best_v[index]
        self.units = self.units[index]
        self.steps, self.reason = self.steps[index], self.reason[index]
        self.best, self.previous_best = self.best[index], self.previous_best[index]

    def drop_dead_units(self, final):
        """Leave out units dead in the current iterate whose parameters are the same in the best one, after
        writing them back to ``final`` for good. Only without dropout, whose masks span all units."""
        if any(spec.dropout > 0 for spec in self.batch.specs):
            return
        # a dead unit's gradients are exactly zero, so its parameters stop changing bit for bit
        alive = ((self.pre > 0).any(1) | (self.moved != self.best_moved).any(1) | (self.v != self.best_v))
        width = max(int(alive.sum(1).max()), 1)
        if width == alive.shape[1]:
            return
        self.write_back(final)
        order = torch.argsort(alive.to(torch.int8), dim=1, descending=True, stable=True)[:, :width]
        rows = torch.arange(len(self.active), device=order.device).unsqueeze(1)
        self.initial = StackedReLUNet(*(p[rows, order] for p in (self.initial.w, self.initial.b, self.initial.v)))
        by_point = order.unsqueeze(1).expand(-1, self.pre.shape[1], -1)
        self.pre, self.moved, self.best_moved = (t.gather(2, by_point) for t in (self.pre, self.moved, self.best_moved))
        self.v, self.best_v = self.v.gather(1, order), self.best_v.gather(1, order)
        self.units = self.units.gather(1, order)


def train_stacked(batch, settings, progress=True):
    """Train every run of ``batch`` from its initialisation; returns each run's lowest-objective iterate
    (the last one, as long as the objective keeps falling) and why each run stopped.

    Large normalised steps can overshoot once the loss is tiny, hence the lowest-objective iterate.
    """
    validate_settings(settings)
    runs, width = batch.net.runs, batch.net.w.shape[1]
    device = batch.x.device
    final = batch.net.select(torch.arange(runs, device=device))
    steps_all = torch.zeros(runs, dtype=torch.long, device=device)
    reasons_all = torch.full((runs,), _RUNNING, dtype=torch.long, device=device)
    mask_shape = (batch.x.shape[1], width)
    state = _WorkingSet(batch)

    bar = tqdm(total=runs, desc="training runs", unit="run", disable=not progress, leave=False)
    for step in range(1, settings.max_steps + 1):
        work = state.batch
        mask = dropout_masks([spec.dropout for spec in work.specs], work.dropout_generators, mask_shape, device,
                             work.x.dtype)
        data_loss, objective, grad_pre, grad_v = _objective_and_pre_gradients(state.pre, state.v, work.y, work.l1,
                                                                              mask, *state.scratch())
        running = state.reason == _RUNNING
        improved = running & (objective < state.best)
        state.best = torch.where(improved, objective, state.best)
        state.keep_best(improved)
        diverged = running & ~torch.isfinite(objective)
        reached = running & (data_loss < settings.loss_tol)
        state.reason = torch.where(diverged, _DIVERGED, torch.where(reached, _LOSS, state.reason))
        frozen = state.reason != _RUNNING
        size = _step_size(settings, objective, frozen)
        state.advance(grad_pre, grad_v, size)
        state.steps += (~frozen).long()

        check = step % settings.check_every == 0 or step == settings.max_steps
        if not check and step % COMPACT_EVERY:
            continue
        if check:
            previous = state.previous_best
            stalled = ~frozen & torch.isfinite(previous) & (previous - state.best <= settings.stall_tol * previous)
            state.reason = torch.where(stalled, _STALLED, state.reason)
            if step == settings.max_steps:
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
    return TrainOutcome(final, steps_all, [STOP_REASONS[code] for code in reasons_all.tolist()])


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
            "dead_neurons": (hidden == 0).all(1).sum(1),
        }


def validate_settings(settings):
    if settings.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {settings.optimizer!r}")
    if settings.max_steps < 1 or settings.check_every < 1 or not settings.lr > 0:
        raise ValueError(f"need max_steps >= 1, check_every >= 1 and lr > 0, got {settings}")


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _distribution(per_point):
    """Median and quartiles over points (lower order statistics, so points never flipped count as inf)."""
    quartiles = torch.quantile(per_point, torch.tensor([0.25, 0.5, 0.75]), interpolation="lower").tolist()
    return [_finite_or_none(q) for q in quartiles]


def run_experiment(config, device="cpu", progress=True):
    """Train every (strength, seed) run of ``config`` in one batch, measure the three minimal flips,
    and return ``{"config": config, "runs": [record, ...]}`` (the results file's content).

    ``config`` keys: mode, d, m, width, strengths, seeds, lr, steps, optimizer.
    """
    specs = [RunSpec(config["mode"], strength, seed) for strength in config["strengths"] for seed in config["seeds"]]
    batch = prepare_runs(specs, config["d"], config["m"], config["width"], device)
    settings = TrainSettings(lr=config["lr"], max_steps=config["steps"], optimizer=config["optimizer"])
    started = time.perf_counter()
    outcome = train_stacked(batch, settings, progress)
    train_seconds = time.perf_counter() - started
    stats = final_statistics(outcome.net, batch.x, batch.y, batch.l1)

    sqrt_d = math.sqrt(config["d"])
    started = time.perf_counter()
    bar = (lambda runs: tqdm(runs, desc="l2 attacks", unit="run", leave=False)) if progress else None
    measures = flip_measures(outcome.net, batch.x, batch.y, FLIP_SEARCH_LIMIT * sqrt_d, seed=0, progress=bar)
    attack_seconds = time.perf_counter() - started

    records = []
    for r, spec in enumerate(specs):
        theory_q = _distribution(measures.theory[r].cpu())
        attack_q = _distribution(measures.attack[r].cpu())
        margin_set_flip = _finite_or_none(measures.margin_set[r])
        record = {
            "mode": spec.mode, "strength": spec.strength, "seed": spec.seed,
            "d": config["d"], "m": config["m"], "width": config["width"],
            "optimizer": settings.optimizer, "lr": settings.lr,
            "steps": int(outcome.steps[r]), "stop_reason": outcome.stop_reasons[r],
            **{key: float(value[r]) for key, value in stats.items() if key != "dead_neurons"},
            "dead_neurons": int(stats["dead_neurons"][r]),
            "flip_margin_set": margin_set_flip,
            "margin_set_size": int(measures.margin_set_size[r]),
            "flip_theory_median": theory_q[1], "flip_theory_quartiles": [theory_q[0], theory_q[2]],
            "flip_attack_median": attack_q[1], "flip_attack_quartiles": [attack_q[0], attack_q[2]],
            "flip_theory_not_found": int(torch.isinf(measures.theory[r]).sum()),
            "flip_attack_not_found": int(torch.isinf(measures.attack[r]).sum()),
            "sqrt_d": sqrt_d, "theory_scale": math.sqrt(config["d"] / config["m"]),
            "flip_theory_per_point": [_finite_or_none(c) for c in measures.theory[r].tolist()],
            "flip_attack_per_point": [_finite_or_none(c) for c in measures.attack[r].tolist()],
        }
        for key in ("flip_margin_set", "flip_theory_median", "flip_attack_median"):
            record[f"{key}_over_sqrt_d"] = None if record[key] is None else record[key] / sqrt_d
        records.append(record)
    timings = {"train_s": train_seconds, "attacks_s": attack_seconds}
    return {"config": {**config, "flip_search_limit": FLIP_SEARCH_LIMIT * sqrt_d, "timings": timings},
            "runs": records}
