"""White-box projected gradient descent (L-inf and L2), batched over samples.

Also home of the pieces NES shares with it: the attack objective, the
eval-mode guard and the seeded per-device random generators.
"""
import contextlib

import torch
import torch.nn.functional as F

NORMS = ("linf", "l2")
_TINY = 1e-12  # guards divisions by a zero gradient or a zero perturbation


@contextlib.contextmanager
def eval_mode(model):
    """Eval mode while attacking; every submodule gets its own previous mode back, even on error."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def attack_objective(logits, y, targeted):
    """Per-sample loss the attacker ascends, and whether each sample already meets its goal.

    Multi-class logits (N, C): cross-entropy, ascended (untargeted, y = true label)
    or descended (targeted, y = target label). A single output (N,) or (N, 1) is a
    binary classifier sign(f) with labels in {-1, +1} (or {0, 1}) and logistic loss,
    which is what the synthetic two-layer network outputs.
    """
    if logits.dim() == 1 or logits.shape[1] == 1:
        margin = torch.where(y > 0, 1.0, -1.0).to(logits.dtype) * logits.reshape(-1)
        if targeted:
            return -F.softplus(-margin), margin > 0
        return F.softplus(-margin), margin < 0
    cross_entropy = F.cross_entropy(logits, y, reduction="none")
    predicted = logits.argmax(1)
    if targeted:
        return -cross_entropy, predicted == y
    return cross_entropy, predicted != y


class SeededGenerators:
    """One torch.Generator per device, seeded once: a fresh attack with the same seed replays the same calls.

    ``seed=None`` uses torch's global RNG (``get`` returns None).
    """

    def __init__(self, seed):
        self.seed = seed
        self._by_device = {}

    def get(self, device):
        if self.seed is None:
            return None
        device = torch.device(device)
        if device not in self._by_device:
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed)
            self._by_device[device] = generator
        return self._by_device[device]


def per_sample(value, x, name):
    """A float stays a float; a tensor of shape (N,) becomes (N, 1, ..., 1) to broadcast over x."""
    if not isinstance(value, torch.Tensor):
        value = float(value)
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value:g}")
        return value
    if value.dim() == 0:
        return per_sample(value.item(), x, name)
    if value.shape != (x.shape[0],):
        raise ValueError(f"per-sample {name} must have shape ({x.shape[0]},), got {tuple(value.shape)}")
    if (value < 0).any():
        raise ValueError(f"{name} must be >= 0 for every sample")
    return value.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def linf_box(x, eps, bounds):
    """Per-coordinate bounds of the L-inf eps-ball around x intersected with ``bounds`` (None: unbounded)."""
    lower, upper = x - eps, x + eps
    if bounds is not None:
        lower, upper = lower.clamp(min=bounds[0]), upper.clamp(max=bounds[1])
    return lower, upper


def select_rows(value, keep):
    """Rows ``keep`` of a per-sample tensor; a float applies to every sample and stays as it is."""
    return value[keep] if isinstance(value, torch.Tensor) else value


def _flat_norm(t):
    return t.flatten(1).norm(dim=1).reshape(-1, *([1] * (t.dim() - 1)))


class PGD:
    """Projected gradient descent, torchattacks style: ``x_adv = PGD(model, ...)(x, y, targeted=False)``.

    L-inf: sign-gradient steps of size ``alpha``, projection onto the eps-ball.
    L2: steps of length ``alpha`` along the normalised gradient, projection onto
    the l2 ball, random start inside that ball (uniform direction, radius uniform
    in [0, eps]). Both clip to ``bounds`` (default [0, 1]; None for unbounded
    inputs such as the synthetic sphere data). ``eps`` and ``alpha`` may be
    floats or per-sample tensors of shape (N,).

    A sample that meets its goal (untargeted: prediction != y; targeted:
    prediction == y, the target) is frozen at that successful point; the check
    runs before each step on the logits the step needs anyway. With
    ``restarts > 1`` only samples still unsuccessful are attacked again, and each
    sample keeps its successful point or else its highest-loss end point.
    Gradients are taken with respect to the input only, so parameter ``.grad``
    is untouched; the model runs in eval mode and gets its mode back.
    """

    def __init__(self, model, eps=8 / 255, alpha=1 / 255, steps=50, random_start=True, restarts=1,
                 norm="linf", seed=None, bounds=(0.0, 1.0)):
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if steps < 0 or restarts < 1:
            raise ValueError(f"need steps >= 0 and restarts >= 1, got steps={steps}, restarts={restarts}")
        self.model = model
        self.eps = eps
        self.alpha = alpha
        self.steps = int(steps)
        self.random_start = random_start
        self.restarts = int(restarts)
        self.norm = norm
        self.bounds = bounds
        self._generators = SeededGenerators(seed)

    def __call__(self, x, y, targeted=False):
        x = x.detach()
        y = y.to(x.device)
        eps = per_sample(self.eps, x, "eps")
        alpha = per_sample(self.alpha, x, "alpha")
        generator = self._generators.get(x.device)
        result = x.clone()
        best_loss = torch.full((x.shape[0],), -float("inf"), device=x.device, dtype=x.dtype)
        with eval_mode(self.model):
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
        return result

    def _not_yet_adversarial(self, x, y, targeted):
        """Indices of samples to attack. A random start would move an already adversarial x away
        from its successful point, so x itself is checked first; without one, the first step checks it."""
        if not self.random_start:
            return torch.arange(x.shape[0], device=x.device)
        with torch.no_grad():
            _, success = attack_objective(self.model(x), y, targeted)
        return (~success).nonzero().squeeze(1)

    def _attack_once(self, x, y, eps, alpha, targeted, generator, keep_loss):
        """One restart. Returns (x_adv, succeeded, loss); the last two only when ``keep_loss``."""
        result = x.clone()
        x_adv = self._start(x, eps, generator)
        # The working set shrinks as samples succeed; `index` maps it back into the batch.
        work = {"index": torch.arange(x.shape[0], device=x.device), "x": x, "y": y, "eps": eps, "alpha": alpha}
        if self.norm == "linf":
            work["lower"], work["upper"] = linf_box(x, eps, self.bounds)
        succeeded = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                loss, success = attack_objective(self.model(x_adv), work["y"], targeted)
                (grad,) = torch.autograd.grad(loss.sum(), x_adv)
            x_adv = x_adv.detach()
            if success.any():
                done = work["index"][success]
                result[done] = x_adv[success]
                succeeded[done] = True
                keep = ~success
                work = {key: select_rows(value, keep) for key, value in work.items()}
                x_adv, grad = x_adv[keep], grad[keep]
                if x_adv.shape[0] == 0:
                    break
            x_adv = self._step(x_adv, grad, work)
        result[work["index"]] = x_adv

        if not keep_loss:
            return result, None, None
        final_loss = torch.full((x.shape[0],), float("inf"), device=x.device, dtype=x.dtype)
        if x_adv.shape[0]:
            with torch.no_grad():
                loss, success = attack_objective(self.model(x_adv), work["y"], targeted)
            final_loss[work["index"]] = loss.to(x.dtype)
            succeeded[work["index"]] = success
        return result, succeeded, final_loss

    def _clip(self, x_adv):
        return x_adv if self.bounds is None else x_adv.clamp(*self.bounds)

    def _start(self, x, eps, generator):
        if not self.random_start:
            return x.clone()
        if self.norm == "linf":
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
            return self._clip(x + noise * eps)
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        radius = torch.rand((x.shape[0],), generator=generator, device=x.device, dtype=x.dtype)
        radius = radius.reshape(-1, *([1] * (x.dim() - 1))) * eps
        return self._clip(x + direction / _flat_norm(direction).clamp_min(_TINY) * radius)

    def _step(self, x_adv, grad, work):
        if self.norm == "linf":
            return torch.min(torch.max(x_adv + work["alpha"] * grad.sign(), work["lower"]), work["upper"])
        x_adv = x_adv + work["alpha"] * grad / _flat_norm(grad).clamp_min(_TINY)
        delta = x_adv - work["x"]
        shrink = (work["eps"] / _flat_norm(delta).clamp_min(_TINY)).clamp(max=1.0)
        # Clipping to the box after the ball projection only moves coordinates towards x, so it stays in the ball.
        return self._clip(work["x"] + delta * shrink)
