"""The training loop of one model, checkpointed every epoch. Resumed runs end with the weights of an uninterrupted
run: the loader's order and augmentation are a function of (seed, epoch), and dropout's RNG is saved every epoch.
"""
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.errors import FileProblem
from common.machine import machine
from data.loader import TensorLoader
from data.registry import get_dataset
from data.subsets import first_per_class, select_classes
from sparsity.hooks import record_activations
from sparsity.measure import evaluate_clean, learned
from sparsity.methods import get_method
from training.adversarial import AdversarialExamples
from training.adversarial import settings as adversarial_settings
from training.checkpoint import build_spec_model, checkpoint_spec, library_versions, load_checkpoint, save_checkpoint
from training.schedule import Schedule

SYNC_EVERY = 25  # steps between host syncs: progress bar update and the non-finite-loss check


@dataclass
class TrainingData:
    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: list  # in label order

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def input_shape(self):
        return tuple(self.train_x.shape[1:])

    def to(self, device):
        """The same data with its tensors on ``device``."""
        return TrainingData(self.train_x.to(device), self.train_y.to(device), self.test_x.to(device),
                            self.test_y.to(device), self.class_names)


def load_training_data(data_dir, recipe):
    """The recipe's data set restricted to its classes (relabelled 0..k-1) and, for --quick, to its subsets."""
    dataset = get_dataset(recipe.dataset)
    data = dataset.read(data_dir, True)
    classes = list(recipe.classes)
    train_x, train_y = select_classes(data.train_x, data.train_y, classes, dataset.num_classes)
    test_x, test_y = select_classes(data.test_x, data.test_y, classes, dataset.num_classes)
    if recipe.train_per_class:
        train_x, train_y = first_per_class(train_x, train_y, recipe.train_per_class)
    if recipe.test_per_class:
        test_x, test_y = first_per_class(test_x, test_y, recipe.test_per_class)
    return TrainingData(train_x, train_y, test_x, test_y, [data.classes[c] for c in classes])


@dataclass
class Outcome:
    spec: object
    action: str  # "trained", "resumed" or "skipped" (finished or diverged before)
    metadata: dict  # the checkpoint's; its "status" says complete or diverged


def check_checkpoint(spec, recipe, models_root):
    """The existing checkpoint of ``spec`` (None: there is none), after checking that it holds this model of this
    data set made with this recipe: a corrupt or foreign file, or one of another recipe, stops the run up front."""
    path = spec.checkpoint_path(models_root)
    if not path.exists():
        return None
    checkpoint = load_checkpoint(path, overwrite="force")
    metadata = checkpoint["metadata"]
    stored = checkpoint_spec(checkpoint)
    if stored != spec:
        raise FileProblem(f"{path} holds {stored.name} of {stored.dataset} ({stored.model}), not {spec.name} of "
                          f"{spec.dataset} ({spec.model}); move it to its own place or delete it", "models_dir",
                          "force")
    differences = recipe.differences(metadata["recipe"])
    if differences:
        raise FileProblem(f"{path} was trained with a different recipe ({'; '.join(differences)}); "
                          f"rerun with its options", "models_dir", "force")
    return checkpoint


def train_model(spec, recipe, data, device, models_root, force=False, channels_last=None, compile=False):
    """Train, resume or skip (a complete or diverged checkpoint, unless ``force``) the model of ``spec``; returns
    its Outcome. ``channels_last``: the memory layout (default: with bf16 autocast and on CUDA; main.py passes
    training.precision's choice); a resumed run keeps the one it began with. ``compile``: through ``torch.compile``
    (off by default: not yet measured on a GPU)."""
    checkpoint = None if force else check_checkpoint(spec, recipe, models_root)
    if checkpoint is not None and checkpoint["metadata"]["status"] in ("complete", "diverged"):
        return Outcome(spec, "skipped", checkpoint["metadata"])
    with cudnn_benchmark(device.type == "cuda"):  # fixed batch shapes: let cuDNN pick its fastest kernels
        metadata = run_epochs(spec, recipe, data.to(device), device, spec.checkpoint_path(models_root), checkpoint,
                              channels_last, compile)
    return Outcome(spec, "resumed" if checkpoint else "trained", metadata)


@contextmanager
def cudnn_benchmark(on):
    """``torch.backends.cudnn.benchmark`` set for the block and restored after it."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def run_epochs(spec, recipe, data, device, path, resume_from=None, channels_last=None, compile=False):
    """Run the remaining epochs of ``spec``'s model, checkpointing each; then measure it on the test set. Returns
    the checkpoint's metadata."""
    default = recipe.amp or device.type == "cuda"
    asked = default if channels_last is None else channels_last
    channels_last = asked if resume_from is None else resume_from["metadata"].get("channels_last", default)
    if channels_last != asked:
        print(f"{spec.name}: resuming with channels_last {channels_last}, the layout it began with "
              f"(--force retrains it from scratch in the one chosen now)", flush=True)
    torch.manual_seed(spec.seed)
    model = build_spec_model(spec, data.input_shape, data.num_classes).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    # the compiled module shares the model's parameters; checkpoints and evaluation use the model itself
    trained = torch.compile(model) if compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    loader = TensorLoader(data.train_x, data.train_y, recipe.batch_size, shuffle=True, augment=recipe.augment,
                          device=device, seed=spec.seed, channels_last=channels_last)
    scheduler = Schedule(optimizer, recipe, len(loader))
    metadata = new_metadata(spec, recipe, data)
    if resume_from is not None:
        model.load_state_dict(resume_from["state_dict"])
        optimizer.load_state_dict(resume_from["optimizer"])
        scheduler.load_state_dict(resume_from["scheduler"])
        set_rng_state(resume_from["rng"], device)
        metadata = resume_from["metadata"]
    # the machine of the last run: a resumed training records where it finished
    metadata.update(device=str(device), versions=library_versions(), machine=machine(), channels_last=channels_last)
    attack = adversarial_settings(spec, recipe)
    adversarial = None if attack is None else AdversarialExamples(attack, spec.seed)

    def checkpoint():
        save_checkpoint(path, model, optimizer, scheduler, rng_state(device), metadata)

    with TrainingObjective(model, spec) as objective:
        for epoch in range(metadata["epochs_done"], recipe.epochs):
            loader.set_epoch(epoch)
            if adversarial is not None:
                adversarial.set_epoch(epoch)
            started = time.perf_counter()
            stats = train_epoch(trained, optimizer, loader, objective, recipe.amp,
                                desc=f"{spec.name} epoch {epoch + 1}/{recipe.epochs}", schedule=scheduler,
                                adversarial=adversarial)
            metadata["train_seconds"] += time.perf_counter() - started
            if not math.isfinite(stats["loss"]):
                metadata.update(status="diverged", diverged_in_epoch=epoch + 1)
                checkpoint()
                return metadata
            scheduler.after_epoch()
            metadata.update(epochs_done=epoch + 1, final_train_loss=stats["loss"], final_train_acc=stats["accuracy"])
            checkpoint()

    test = evaluate_clean(model, data.test_x, data.test_y, device=device)
    sparsity = test["activation_sparsity"]
    metadata.update(status="complete", clean_test_acc=test["accuracy"], activation_sparsity=sparsity,
                    learned=learned(test["accuracy"], data.num_classes),
                    collapsed=spec.layer is not None and sparsity[spec.layer] == 1.0)
    checkpoint()
    return metadata


def new_metadata(spec, recipe, data):
    return {"spec": spec.to_record(), "status": "in_progress", "epochs_done": 0, "recipe": recipe.to_dict(),
            # the resolved attack of adversarial training (None: standard); final_train_* are then on attacked images
            "adversarial_training": adversarial_settings(spec, recipe),
            "input_shape": list(data.input_shape), "num_classes": data.num_classes, "classes": data.class_names,
            "n_train": len(data.train_y), "n_test": len(data.test_y),
            "final_train_loss": None, "final_train_acc": None, "clean_test_acc": None, "activation_sparsity": None,
            "learned": None, "collapsed": None, "diverged_in_epoch": None, "train_seconds": 0.0}


class TrainingObjective:
    """Cross-entropy plus the spec's sparsity term, through a forward hook on the regularised layer while it is open
    (a context manager)."""

    def __init__(self, model, spec):
        self.spec = spec
        self.method = None if spec.is_baseline else get_method(spec.method)
        self._recording = record_activations(model, [] if self.method is None else [spec.layer])
        self.activations = self._recording.__enter__()

    def __call__(self, logits, y):
        loss = F.cross_entropy(logits, y)
        if self.method is not None:
            penalty = self.method.penalty(self.activations[self.spec.layer], self.spec.strength)
            if penalty is not None:
                loss = loss + penalty
        return loss

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._recording.__exit__(None, None, None)


def train_epoch(model, optimizer, loader, objective, amp, desc=None, schedule=None, adversarial=None):
    """One pass over ``loader``: ``{"loss", "accuracy", "images_per_second"}``; loss is inf/nan if it diverged.
    ``schedule`` (training.schedule.Schedule) steps after every SGD step where it is per step; ``adversarial``
    (training.adversarial.AdversarialExamples) replaces each batch by its attacked images."""
    model.train()
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), dtype=torch.int64, device=loader.device)
    seen = 0
    started = time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, unit="batch", dynamic_ncols=True)
    for step, (x, y) in enumerate(bar, start=1):
        loss, batch_correct = train_step(model, optimizer, x, y, objective, amp, adversarial)
        if schedule is not None:
            schedule.after_step()
        loss_sum += loss * len(y)
        correct += batch_correct
        seen += len(y)
        if step % SYNC_EVERY == 0 or step == len(loader):
            mean_loss = loss_sum.item() / seen
            images_per_second = seen / (time.perf_counter() - started)
            bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{correct.item() / seen:.3f}",
                            img_s=f"{images_per_second:.0f}")
            if not math.isfinite(mean_loss):
                break
    bar.close()
    return {"loss": mean_loss, "accuracy": correct.item() / seen, "images_per_second": images_per_second}


def train_step(model, optimizer, x, y, objective, amp=False, adversarial=None):
    """One SGD step on ``objective`` (a TrainingObjective); returns (loss, n correct) as tensors. With
    ``adversarial`` the step trains on ``adversarial(model, x, y)`` instead of x (the attack runs in fp32)."""
    if adversarial is not None:
        x = adversarial(model, x, y)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(x)
        loss = objective(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach().float(), (logits.argmax(1) == y).sum()


def rng_state(device):
    """The generators dropout draws from: the CPU one and the accelerator's."""
    state = {"cpu": torch.get_rng_state()}
    if device.type in ("cuda", "mps"):
        state[device.type] = torch.get_device_module(device).get_rng_state(device)
    return state


def set_rng_state(state, device):
    torch.set_rng_state(state["cpu"])
    if device.type in ("cuda", "mps") and device.type in state:
        torch.get_device_module(device).set_rng_state(state[device.type], device)


def outcome_line(outcome):
    """One summary line per spec."""
    metadata, name = outcome.metadata, outcome.spec.name
    if metadata["status"] == "diverged":
        when = "in an earlier run, skipped" if outcome.action == "skipped" else "checkpoint marked \"diverged\""
        return (f"{name}: DIVERGED (non-finite loss) in epoch {metadata['diverged_in_epoch']}; {when}"
                f" (change the recipe or strength, or --force to retrain it)")
    layer = outcome.spec.layer
    zeros = f", {layer} zeros {metadata['activation_sparsity'][layer]:.1%}" if layer else ""
    action = "already complete, skipped (--force retrains it)" if outcome.action == "skipped" else outcome.action
    line = (f"{name}: {action}, {metadata['epochs_done']} epochs, train loss {metadata['final_train_loss']:.3f}"
            f" acc {metadata['final_train_acc']:.1%}, test acc {metadata['clean_test_acc']:.1%}{zeros},"
            f" {metadata['train_seconds']:.0f} s training")
    if metadata.get("learned") is False:
        line += "; DID NOT LEARN: test accuracy near chance, its robustness numbers would compare noise"
    if metadata["collapsed"]:
        line += f"; COLLAPSED: {layer} outputs only zeros on the test set"
    return line
