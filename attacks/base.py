"""What every attack shares. The contract (torchattacks style): ``x_adv, queries = PGD(model, eps=8/255)(x, y)``,
``x`` float images in [0, 1] on the model's device, ``y`` the true labels (the targets when ``targeted=True``),
``queries`` an int64 count per image for attacks that count model queries, else None. The model runs in eval mode
during the attack and every submodule gets its own mode back afterwards.
"""
import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common import validation

TINY = 1e-12  # guards divisions by a zero gradient or a zero perturbation
# An attack built without a budget gets CIFAR-10's standard one; the evaluation protocol always passes the
# budget of the data set it attacks (data.registry: Fashion-MNIST 0.1, MNIST 0.3).
DEFAULT_EPS, DEFAULT_STEP = 8 / 255, 1 / 255
# Steps between host syncs in the PGD and NES loops, where finished samples leave the working set (between syncs
# they are frozen by masks on the device): on a CPU a sync is free and leaving saves compute, on an accelerator
# each sync stalls the kernel queue.
SYNC_EVERY = {"cpu": 1}
ACCELERATOR_SYNC_EVERY = 10
WHITE_BOX, BLACK_BOX = "white-box", "black-box"
# Which images an evaluation attacks: the first n_eval test images, or the seeded query subset of them
# (query-based attacks are too costly for every image).
ALL_IMAGES, QUERY_SUBSET = "all", "query_subset"


@dataclass(frozen=True)
class AttackSettings:
    """Base of an attack's own settings: fields are ``common.cli.option``s, ``quick`` the --quick preset (field ->
    value). An ``EvalConfig`` holds one per attack (``config.settings_of(name)``) beside the shared protocol."""

    quick = {}

    def validate(self):
        """ConfigError naming the first bad field."""


@dataclass(frozen=True)
class AttackRun:
    """One configured attack of an evaluation: its result key, the attack, the goal and the images it gets."""

    key: str  # result key: "pgd", "nes_untargeted_m0.9", ...
    title: str  # for tables and figures: "PGD", "NES untargeted, momentum 0.9", ...
    attack: object
    targeted: bool = False
    images: str = ALL_IMAGES
    # Key of a run of the same evaluation and images whose result this one continues (``attack.extend``) instead of
    # repeating it: AutoAttack after APGD, its first parts.
    after: str | None = None


class Attack:
    """Base class: subclasses set ``name`` and ``threat_model`` and implement ``__call__``, and say how the evaluation
    runs them (``evaluation_runs``) and, where they have settings of their own, declare them (``Settings``).
    ``counts_queries``: ``__call__`` returns per-image query counts; ``reference``: the field's standard white-box
    evaluation (AutoAttack)."""

    name = None
    threat_model = WHITE_BOX
    counts_queries = False
    reference = False
    Settings = None  # an AttackSettings dataclass where the attack has settings of its own

    def __init__(self, model, seed=None):
        self.model = model
        self.seed = None if seed is None else validation.seed(seed)
        self._generators = {}

    def generator(self, device):
        """The attack's generator on ``device``, seeded once, so that a fresh attack with the same seed replays the
        same calls; None (torch's global RNG) without a seed."""
        if self.seed is None:
            return None
        device = torch.device(device)
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def __call__(self, x, y, targeted=False):
        raise NotImplementedError

    def settings(self):
        """The knobs that define this attack, for ``repr`` and result files."""
        return {}

    def __repr__(self):
        knobs = ", ".join(f"{key}={value!r}" for key, value in {**self.settings(), "seed": self.seed}.items())
        return f"{type(self).__name__}({knobs})"

    @classmethod
    def evaluation_runs(cls, model, config):
        """The ``AttackRun``s of this attack that an ``EvalConfig`` asks for."""
        raise NotImplementedError

    def extend(self, x, y, x_prior, still_correct):
        """``(x_adv, queries)`` as ``self(x, y)`` would return them, given the adversarial images ``x_prior`` of the
        run this one continues (``AttackRun.after``) and which images they leave ``still_correct``."""
        raise NotImplementedError(f"{type(self).__name__} does not continue other runs")


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


LOSSES = ("ce", "margin")


def attack_objective(logits, y, targeted, loss="ce"):
    """Per-sample loss the attacker ascends, and whether each sample already meets its goal.

    ``loss="ce"``: cross-entropy, ascended untargeted, descended targeted (y the target). ``loss="margin"``: the
    logit margin (Carlini & Wagner's), ``max_{j != y} z_j - z_y`` (targeted: its negative), which does not saturate
    as softmax does: attacks on masked models use it. A single output (N,) or (N, 1), the synthetic network's, is a
    binary classifier sign(f) with labels in {-1, +1} (or {0, 1}) and logistic loss (margin: the negated signed
    output)."""
    if logits.dim() == 1 or logits.shape[1] == 1:
        margin = torch.where(y > 0, 1.0, -1.0).to(logits.dtype) * logits.reshape(-1)
        objective = -margin if loss == "margin" else F.softplus(-margin)
        return (-objective, margin > 0) if targeted else (objective, margin < 0)
    predicted = logits.argmax(1)
    if loss == "margin":
        own = logits.gather(1, y.unsqueeze(1)).squeeze(1)
        best_other = logits.scatter(1, y.unsqueeze(1), -float("inf")).amax(1)
        return (own - best_other, predicted == y) if targeted else (best_other - own, predicted != y)
    cross_entropy = F.cross_entropy(logits, y, reduction="none")
    return (-cross_entropy, predicted == y) if targeted else (cross_entropy, predicted != y)


def check_inputs(model, x, y):
    """The contract's input checks: float images of the model's dtype, a label tensor with one label per image."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"attacks take float images in [0, 1], got {kind}; convert uint8 images with x.float() / 255")
    parameter = next(model.parameters(), None)
    if parameter is not None and parameter.dtype != x.dtype:
        raise TypeError(f"the model is {parameter.dtype} but the images are {x.dtype}; use x.to({parameter.dtype})")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"labels must be a tensor, got {type(y).__name__}; use torch.tensor(labels)")
    if y.shape[:1] != x.shape[:1]:
        raise ValueError(f"{x.shape[0]} images but {y.shape[0] if y.dim() else 0} labels")
    return x.detach(), y.to(x.device)


def per_sample(value, x, name):
    """A finite float >= 0 stays a float; a tensor of shape (N,) becomes (N, 1, ..., 1) to broadcast over x."""
    if not isinstance(value, torch.Tensor):
        return validation.number(value, name, minimum=0)
    if value.dim() == 0:
        return per_sample(value.item(), x, name)
    if value.shape != (x.shape[0],):
        raise ValueError(f"per-sample {name} must have shape ({x.shape[0]},), got {tuple(value.shape)}")
    if not torch.isfinite(value).all() or (value < 0).any():
        raise ValueError(f"{name} must be finite and >= 0 for every sample")
    return row_mask(value.to(device=x.device, dtype=x.dtype), x)


def linf_box(x, eps, bounds):
    """Per-coordinate bounds of the L-inf eps-ball around x intersected with ``bounds`` (None: unbounded)."""
    lower, upper = x - eps, x + eps
    if bounds is not None:
        lower, upper = lower.clamp(min=bounds[0]), upper.clamp(max=bounds[1])
    return lower, upper


def sync_every(device, given=None):
    """K of ``SYNC_EVERY`` for ``device``, unless ``given``."""
    if given is not None:
        return validation.integer(given, "sync_every", minimum=1)
    return SYNC_EVERY.get(torch.device(device).type, ACCELERATOR_SYNC_EVERY)


def row_mask(mask, like):
    """Per-sample values (N,), e.g. a bool mask, shaped to broadcast over ``like`` (N, ...)."""
    return mask.reshape(-1, *([1] * (like.dim() - 1)))


def select_rows(value, keep):
    """Rows ``keep`` of a per-sample tensor; a float applies to every sample and stays as it is."""
    return value[keep] if isinstance(value, torch.Tensor) else value


def flat_norm(t):
    """l2 norm of each sample, shaped to broadcast over ``t``."""
    return row_mask(t.flatten(1).norm(dim=1), t)


@contextlib.contextmanager
def input_gradients_only(model):
    """Parameters frozen: where an attack backpropagates a loss (the package's FAB does), parameter gradients would
    cost a second backward's worth of work for nothing."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
