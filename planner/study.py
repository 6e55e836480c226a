"""A study as data: a study file (``studies/*.py``) declares one ``Study`` and hands it to ``planner.study_cli.main``.
An ``Arm`` is a ``ModelSpec`` without its seed and data set, compared with its reference, itself an arm."""
from dataclasses import dataclass, field, replace
from pathlib import Path

from analysis.comparisons import STATISTICS, StudyResults
from analysis.inference import MARGINS
from evaluation.config import protocol
from models import DEFAULT_MODEL
from models.spec import ModelSpec
from planner.tasks import Setup
from records.store import ResultStore
from sparsity.methods import BASELINE, get_method

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Arm:
    label: str
    method: str = BASELINE
    layer: str | None = None
    strength: float = 0.0
    adv: str | None = None  # adversarial training (training.adversarial), None: standard training
    adv_eps: float | None = None
    seeds: tuple | None = None  # None: the study's

    def spec(self, seed, dataset, model=DEFAULT_MODEL):
        return ModelSpec(self.method, self.layer, float(self.strength), seed, self.adv, self.adv_eps,
                         dataset=dataset, model=model)


@dataclass(frozen=True)
class Study:
    title: str
    dataset: str
    arms: tuple | None  # Arm, every arm's reference among them; None: every record of the store, nothing to run
    seeds: tuple
    store: str  # the results' root, relative to the repository (committed under docs/results/ once published)
    models: str = "trained-models/study"  # the checkpoints' root (never committed)
    recipe: dict = field(default_factory=dict)  # Recipe options besides the data set's recipe (pins: amp, ...)
    channels_last: bool | None = None  # training's memory layout (None: measured)
    protocol: str = "full"  # an evaluation.config preset
    protocol_changes: dict = field(default_factory=dict)
    statistics: tuple = STATISTICS  # the first is the primary one
    margins: dict = field(default_factory=lambda: dict(MARGINS))  # equivalence margins (analysis.inference)
    train_threads: int | None = None  # None: every core torch sees
    eval_threads: int | None = None
    workers: int | None = None  # evaluations at once (None: one at a time, in the study's own process)
    model: str = DEFAULT_MODEL
    also_on: tuple = ()  # other data sets the same design may run on (--dataset)
    compare: bool = True  # False: a description of single models (its tables show each arm; no comparison rows)
    evaluate: bool = True  # False: training only (calibration models, read from their checkpoints)

    def specs(self):
        """Every arm's model of each of its seeds, seed by seed (a seed block), the arms in declared order."""
        seeds = sorted({seed for arm in self.arms or () for seed in arm.seeds or self.seeds})
        return [arm.spec(seed, self.dataset, self.model) for seed in seeds for arm in self.arms or ()
                if seed in (arm.seeds or self.seeds)]

    def setup(self, data_dir, device="cpu"):
        return Setup(models_root=ROOT / self.models, results_root=ROOT / self.store, data_dir=Path(data_dir),
                     recipe_options=dict(self.recipe),
                     protocol=protocol(self.protocol, dataset=self.dataset, **self.protocol_changes), device=device,
                     train_threads=self.train_threads, eval_threads=self.eval_threads,
                     channels_last=self.channels_last)

    def records(self):
        """The store's records of the declared design (other models in the store join no arm or Holm family)."""
        design = None if self.arms is None else set(self.specs())
        return ResultStore(ROOT / self.store).records(self.dataset, lambda spec: design is None or spec in design)

    def results(self):
        records = self.records()
        return StudyResults.of(records, self.statistics, self.margins) if records else None

    def check(self):
        """A ValueError where an arm's reference is not an arm or its method refuses its strength."""
        specs = set(self.specs())
        for spec in specs:
            if spec.reference is not None and spec.reference not in specs:
                raise ValueError(f"{self.title}: the reference {spec.reference.name} of {spec.name} is not an arm")
            if not spec.is_baseline:
                get_method(spec.method).validate_strength(spec.strength)
        return self

    def with_(self, **changes):
        return replace(self, **changes)
