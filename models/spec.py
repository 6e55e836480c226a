"""A trained model's identity, one ``ModelSpec``, from which every name, path, reference and surrogate is derived.
Checkpoints, result records and study arms name their model by it; names are deterministic and collision-free, so
models trained or evaluated in separate processes (a Slurm array) never overwrite each other.
"""
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from data.registry import DEFAULT_DATASET
from models import DEFAULT_MODEL
from sparsity.methods import BASELINE, get_method


def strength_name(strength):
    """The strength as names write it: the shortest text that reads back as exactly this float (``0.01``,
    ``1e-05``), an integral value's ``.0`` dropped (``10``)."""
    text = repr(float(strength))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class ModelSpec:
    method: str  # a registered sparsity method, or "standard" for the baseline
    layer: str | None  # None for the baseline
    strength: float  # 0.0 for the baseline
    seed: int
    adv: str | None = None  # adversarial training (training.adversarial: pgd, fgsm-rs), or None: standard training
    adv_eps: float | None = None  # its L-inf budget; None without adversarial training
    dataset: str = field(default=DEFAULT_DATASET, kw_only=True)
    model: str = field(default=DEFAULT_MODEL, kw_only=True)

    @classmethod
    def baseline_of(cls, seed, adv=None, adv_eps=None, *, dataset=DEFAULT_DATASET, model=DEFAULT_MODEL):
        return cls(BASELINE, None, 0.0, seed, adv, adv_eps, dataset=dataset, model=model)

    @classmethod
    def from_record(cls, record):
        """The spec of a ``to_record()`` dict (checkpoints, result files)."""
        return cls(record["method"], record["layer"], float(record["strength"]), record["seed"], record.get("adv"),
                   record.get("adv_eps"), dataset=record.get("dataset", DEFAULT_DATASET),
                   model=record.get("model", DEFAULT_MODEL))

    def to_record(self):
        return {**asdict(self), "name": self.name}

    @property
    def is_baseline(self):
        return self.method == BASELINE

    @property
    def training(self):
        """``standard`` or e.g. ``fgsm-rs eps=0.1``."""
        return "standard" if self.adv is None else f"{self.adv} eps={self.adv_eps:g}"

    @property
    def name(self):
        """File stem: ``l1_conv3_s0.01_seed0``, ``standard_seed0``, ``standard_at-fgsm-rs-e0.1_seed0``; unique within
        one data set and architecture (its folder)."""
        adv = "" if self.adv is None else f"_at-{self.adv}-e{strength_name(self.adv_eps)}"
        if self.is_baseline:
            return f"{BASELINE}{adv}_seed{self.seed}"
        return f"{self.method}_{self.layer}_s{strength_name(self.strength)}{adv}_seed{self.seed}"

    @property
    def label(self):
        """For tables and plots: ``conv3 (λ=0.01)`` or ``standard``, with ``, FGSM-RS-AT ε=0.1``."""
        adv = "" if self.adv is None else f"{self.adv.upper()}-AT ε={self.adv_eps:g}"
        if self.is_baseline:
            return f"{BASELINE} ({adv})" if adv else BASELINE
        return f"{self.layer} ({get_method(self.method).strength_text(self.strength)}{', ' + adv if adv else ''})"

    def folder(self, root):
        """Where this model's files live under a models or results root: ``{root}/{dataset}/{model}/``."""
        return Path(root) / self.dataset / self.model

    def checkpoint_path(self, models_root):
        return self.folder(models_root) / f"{self.name}.pt"

    @property
    def baseline(self):
        """The standard model trained as this one was (the same seed, data, architecture and training): what its
        audit's radii scale with and, for a method that masks gradients, the transfer attack's surrogate."""
        return replace(self, method=BASELINE, layer=None, strength=0.0)

    @property
    def reference(self):
        """What this model is compared with: its baseline; an adversarially trained baseline (a positive control)
        is compared with the standard baseline; the standard baseline with nothing (None)."""
        if not self.is_baseline:
            return self.baseline
        return None if self.adv is None else replace(self, adv=None, adv_eps=None)

    @property
    def masks_gradients(self):
        return not self.is_baseline and get_method(self.method).masks_gradients

    @property
    def surrogate(self):
        """The model whose examples the transfer attack carries over, where this one masks gradients; else None."""
        return self.baseline if self.masks_gradients else None

    @property
    def arm(self):
        """The spec without its seed (seed -1): what the seeds of one arm share."""
        return replace(self, seed=-1)

    def order(self, layer_names):
        """Table order: the baseline first, then layers in forward order, strength, seed."""
        return (-1 if self.is_baseline else layer_names.index(self.layer), self.strength, self.seed)
