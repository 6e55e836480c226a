"""A trained variant's identity (method, layer, strength, seed) and the file names derived from it.

Checkpoints and results have deterministic paths so that variants trained or
evaluated in separate processes (a cluster job array) never collide and merge.
"""
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from common.errors import UsageError
from models.simple_cnn import LAYER_NAMES

METHODS = ("l1", "dropout")
BASELINE = "standard"
DEFAULT_STRENGTH = {"l1": 1e-2, "dropout": 0.3}
SWEEP_STRENGTHS = {
    "l1": (1e-5, 2e-4, 1e-2, 0.1, 1.0, 10.0),
    "dropout": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
}


@dataclass(frozen=True)
class Variant:
    method: str  # "l1", "dropout" or "standard"
    layer: str | None  # None for the standard baseline
    strength: float
    seed: int

    @classmethod
    def baseline(cls, seed):
        return cls(BASELINE, None, 0.0, seed)

    @property
    def is_baseline(self):
        return self.method == BASELINE

    @property
    def name(self):
        """File stem: ``conv3_s0.01_seed0`` or ``standard_seed0``."""
        if self.is_baseline:
            return f"{BASELINE}_seed{self.seed}"
        return f"{self.layer}_s{self.strength:g}_seed{self.seed}"

    @property
    def label(self):
        """Short label for tables and plots: ``conv3 (0.01)`` or ``standard``."""
        return BASELINE if self.is_baseline else f"{self.layer} ({self.strength:g})"

    def checkpoint_path(self, models_dir):
        """``trained-models/l1/conv3_s0.01_seed0.pt``; the baseline is shared: ``trained-models/standard_seed0.pt``."""
        models_dir = Path(models_dir)
        if self.is_baseline:
            return models_dir / f"{self.name}.pt"
        return models_dir / self.method / f"{self.name}.pt"

    def results_path(self, results_dir, method):
        """``results/{method}/{name}.json``; the baseline gets a copy in each method's folder."""
        return Path(results_dir) / method / f"{self.name}.json"

    def to_dict(self):
        return asdict(self)


def validate_strength(method, strength):
    if not math.isfinite(strength):
        raise UsageError(f"strength {strength} is not a finite number; pass --strength with a finite value")
    if method == "l1" and not strength >= 0:
        raise UsageError(f"L1 strength must be >= 0, got {strength:g}; pass --strength with a non-negative value")
    if method == "dropout" and not 0 <= strength < 1:
        raise UsageError(f"dropout p must be in [0, 1), got {strength:g}; pass --strength with 0 <= p < 1")


def validate_layers(layers):
    unknown = [layer for layer in layers if layer not in LAYER_NAMES]
    if unknown:
        raise UsageError(f"unknown layer {unknown[0]!r}; valid layers: {' '.join(LAYER_NAMES)}")


def select_variants(method, layers, strengths, seeds, include_baseline):
    """The variants one command acts on: every (layer, strength, seed), baselines first."""
    validate_layers(layers)
    for strength in strengths:
        validate_strength(method, strength)
    variants = [Variant.baseline(seed) for seed in seeds] if include_baseline else []
    variants += [Variant(method, layer, float(strength), seed)
                 for seed in seeds for layer in layers for strength in strengths]
    return variants
