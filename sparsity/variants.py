"""A trained variant's identity (method, layer, strength, seed, adversarial training) and its file names.

Checkpoints and results have deterministic, collision-free paths so that
variants trained or evaluated in separate processes (a cluster job array)
never overwrite each other and merge.
"""
from dataclasses import asdict, dataclass
from pathlib import Path

from common import validation
from common.errors import ConfigError
from models import all_layer_names, layer_names
from sparsity.methods import BASELINE, get_method


def strength_name(strength):
    """The strength as file names write it: the shortest text that reads back as exactly this float
    (``0.01``, ``1e-05``, ``0.1234567``), with an integral value's ``.0`` dropped (``10``)."""
    text = repr(float(strength))
    return text[:-2] if text.endswith(".0") else text


class TrainedAs:
    """What a variant and a study's arm (vis.comparisons) share: whether it is the baseline, and how it was trained
    (fields ``method``, ``adv``, ``adv_eps``)."""

    @property
    def is_baseline(self):
        return self.method == BASELINE

    @property
    def training(self):
        """``standard`` or e.g. ``fgsm-rs eps=0.1``."""
        return "standard" if self.adv is None else f"{self.adv} eps={self.adv_eps:g}"


@dataclass(frozen=True)
class Variant(TrainedAs):
    method: str  # a registered sparsity method, or "standard" for the baseline
    layer: str | None  # None for the standard baseline
    strength: float
    seed: int
    adv: str | None = None  # adversarial training (training.adversarial: pgd, fgsm-rs), or None: standard training
    adv_eps: float | None = None  # its L-inf budget; None without adversarial training

    @classmethod
    def baseline(cls, seed, adv=None, adv_eps=None):
        return cls(BASELINE, None, 0.0, seed, adv, adv_eps)

    @classmethod
    def from_record(cls, record):
        """The variant of a ``to_record()`` dict (checkpoint metadata, result files); records from before
        adversarial training have none."""
        return cls(record["method"], record["layer"], record["strength"], record["seed"], record.get("adv"),
                   record.get("adv_eps"))

    @property
    def adv_tag(self):
        """``_at-pgd-e0.1`` for an adversarially trained variant, else empty."""
        return "" if self.adv is None else f"_at-{self.adv}-e{strength_name(self.adv_eps)}"

    @property
    def name(self):
        """File stem: ``conv3_s0.01_seed0`` or ``standard_seed0``, adversarially trained ``standard_at-pgd-e0.1_seed0``;
        distinct variants have distinct names."""
        if self.is_baseline:
            return f"{BASELINE}{self.adv_tag}_seed{self.seed}"
        return f"{self.layer}_s{strength_name(self.strength)}{self.adv_tag}_seed{self.seed}"

    @property
    def label(self):
        """Short label for tables and plots: ``conv3 (λ=0.01)`` or ``standard``, with ``, PGD-AT ε=0.1``."""
        adv = "" if self.adv is None else f"{self.adv.upper()}-AT ε={self.adv_eps:g}"
        if self.is_baseline:
            return f"{BASELINE} ({adv})" if adv else BASELINE
        return f"{self.layer} ({get_method(self.method).strength_text(self.strength)}{', ' + adv if adv else ''})"

    def checkpoint_path(self, models_dir):
        """``trained-models/l1/conv3_s0.01_seed0.pt``; the baseline is shared: ``trained-models/standard_seed0.pt``."""
        models_dir = Path(models_dir)
        if self.is_baseline:
            return models_dir / f"{self.name}.pt"
        return models_dir / self.method / f"{self.name}.pt"

    def results_path(self, results_dir, method):
        """``results/{method}/{name}.json``; the baseline gets a copy in each method's folder."""
        return Path(results_dir) / method / f"{self.name}.json"

    def to_record(self):
        return {**asdict(self), "name": self.name}

    def selection_flags(self):
        """main.py's flags that select this variant alone among its method's (method, adversarial training and seed
        aside): ``--baseline-only``, or ``--layers L --strength S --no-baseline``."""
        if self.is_baseline:
            return ["--baseline-only"]
        return ["--layers", self.layer, "--strength", repr(self.strength), "--no-baseline"]


def validate_layers(layers, model=None, field="layers"):
    """The layers as a tuple: known to ``model`` (None: to any registered model), each listed once, at least one."""
    known = all_layer_names() if model is None else layer_names(model)
    layers = tuple(layers)
    if not layers:
        raise ConfigError(field, f"lists no layer; valid layers: {' '.join(known)}")
    unknown = [layer for layer in layers if layer not in known]
    if unknown:
        raise ConfigError(field, f"has unknown layer {unknown[0]!r}; valid layers: {' '.join(known)}")
    return validation.distinct(layers, field)


def select_variants(method, layers, strengths, seeds, include_baseline, model=None, adv=None, adv_eps=None):
    """The variants one command acts on: every (layer, strength, seed), baselines first; all with the adversarial
    training ``adv`` at ``adv_eps`` (None: standard training)."""
    from training.adversarial import validate_adversarial  # training imports this module

    validate_adversarial(adv, adv_eps)
    adv_eps = None if adv is None else float(adv_eps)
    sparsity = get_method(method)
    layers = validate_layers(layers, model)
    strengths = validation.distinct([sparsity.validate_strength(s, "strengths") for s in strengths], "strengths")
    seeds = validation.seeds(seeds)
    variants = [Variant.baseline(seed, adv, adv_eps) for seed in seeds] if include_baseline else []
    variants += [Variant(method, layer, strength, seed, adv, adv_eps)
                 for seed in seeds for layer in layers for strength in strengths]
    return variants
