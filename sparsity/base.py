"""The record every sparsity method is: how it is named, shown and validated, and the two ways it can act (a loss
term on a layer's activation, a change to the model); the registry is ``sparsity.methods.METHODS``."""
import math
from dataclasses import dataclass

from common.errors import ConfigError


@dataclass(frozen=True)
class SparsityMethod:
    name: str  # key in files, folders and on the command line
    title: str  # figure titles and tables
    symbol: str  # the strength's symbol in labels: λ=0.01
    strength_label: str  # axis label
    default_strength: float
    sweep: tuple  # the original repository's sweep (--sweep)
    log_scale: bool  # strengths span decades: log axes, closeness measured in decades
    strength_below: float | None = None  # exclusive upper bound of the strength, if any

    def validate_strength(self, strength, field="strength"):
        """The strength as a float, or ConfigError: finite, >= 0, and below ``strength_below`` if set."""
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength):
            raise ConfigError(field, f"must be a finite number, got {strength!r}")
        if self.strength_below is not None and not 0 <= strength < self.strength_below:
            raise ConfigError(field, f"({self.strength_label}) must be in [0, {self.strength_below:g}), "
                                     f"got {strength:g}")
        if strength < 0:
            raise ConfigError(field, f"({self.strength_label}) must be >= 0, got {strength:g}")
        return float(strength)

    def strength_text(self, strength):
        return f"{self.symbol}={strength:g}"

    # A method whose forward pass hides useful gradients (k-WTA's jumping top-k) declares it and gives straight-through
    # backward passes (BPDA, Athalye et al. 2018): the evaluation then runs the adaptive attacks (attacks.adaptive).
    masks_gradients = False
    straight_through_modes = ()  # the backward passes ``straight_through`` offers, e.g. ("identity", "relu")

    def straight_through(self, model, backward_as):
        """A context in which ``model``'s layers of this method backpropagate as ``backward_as``."""
        raise NotImplementedError(f"{self.name} does not mask gradients: it has no straight-through backward")

    def attach(self, model, layer, strength):
        """Change ``model`` in place at ``layer`` (default: nothing); checkpoints rebuild their model through it."""

    def penalty(self, activation, strength):
        """The loss term on ``layer``'s activation, or None when the method adds none."""
        return None
