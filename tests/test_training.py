"""Model, sparsity placement and measurement, the training loop, checkpoints and resuming (CPU, generated data)."""
import pytest
import torch

from models import SimpleCNN
from sparsity.hooks import record_activations
from sparsity.measure import evaluate_clean
from sparsity.methods import METHODS
from models.spec import ModelSpec
from training import loop as train_module
from training.checkpoint import build_spec_model, load_checkpoint, model_from_checkpoint
from training.loop import load_training_data, train_model
from training.recipe import Recipe

LAYER_NAMES = SimpleCNN.LAYER_NAMES

CPU = torch.device("cpu")
# Four classes of the generated set: 200 training and 80 test images, learnable in two short epochs.
SMALL = dict(classes=(0, 1, 2, 3), epochs=2, batch_size=32, lr=0.05, augment="none")


def build_model(spec, num_classes):
    return build_spec_model(spec, (3, 32, 32), num_classes)


def train_specs(specs, recipe, data_dir, models_root, device=CPU, **options):
    """Each spec's training in turn on the recipe's data, read once; their Outcomes (what a plan's training tasks
    do one by one)."""
    data = load_training_data(data_dir, recipe)
    return [train_model(spec, recipe, data, device, models_root, **options) for spec in specs]


def forward_with_activations(model, x):
    with record_activations(model, LAYER_NAMES) as activations:
        logits = model(x)
    return logits, activations


@pytest.mark.parametrize("num_classes", [10, 4])
def test_model_outputs_one_logit_per_class_and_hooks_see_every_layer_activation(num_classes):
    model = build_model(ModelSpec.baseline_of(0), num_classes)
    logits, activations = forward_with_activations(model, torch.rand(5, 3, 32, 32))
    assert logits.shape == (5, num_classes)
    assert list(activations) == list(LAYER_NAMES)
    assert activations["conv2"].shape == (5, 64, 28, 28)
    assert activations["fc1"].shape == (5, 256)
    assert torch.equal(activations["fc3"], logits)


def test_l1_penalty_is_strength_times_mean_absolute_activation_of_its_layer():
    activation = torch.tensor([[0.0, 2.0], [4.0, -2.0]])
    assert METHODS["l1"].penalty(activation, 0.5).item() == pytest.approx(0.5 * 2.0)
    assert METHODS["dropout"].penalty(activation, 0.5) is None


def test_dropout_is_active_in_train_mode_and_off_in_eval_mode():
    torch.manual_seed(0)
    model = build_model(ModelSpec("dropout", "fc1", 0.5, 0), 10)
    plain = build_model(ModelSpec.baseline_of(0), 10)
    plain.load_state_dict(model.state_dict())
    x = torch.rand(64, 3, 32, 32)

    model.train()
    _, first = forward_with_activations(model, x)
    _, second = forward_with_activations(model, x)
    _, reference = forward_with_activations(plain.eval(), x)
    dropped = (first["fc1"] == 0) & (reference["fc1"] != 0)
    assert 0.4 < dropped.sum() / (reference["fc1"] != 0).sum() < 0.6
    assert not torch.equal(first["fc1"], second["fc1"])

    model.eval()
    assert torch.equal(model(x), model(x))
    assert torch.allclose(model(x), plain(x))


def test_activation_sparsity_counts_exact_zeros_in_one_batched_pass():
    torch.manual_seed(0)
    model = build_model(ModelSpec.baseline_of(0), 10)
    with torch.no_grad():
        model.conv4.bias.fill_(-1e6)  # conv4 outputs only zeros, so fc1 sees zeros too
    x = (torch.rand(23, 3, 32, 32) * 255).to(torch.uint8)
    measured = evaluate_clean(model, x, batch_size=7)["activation_sparsity"]
    _, activations = forward_with_activations(model.eval(), x.float() / 255)
    for layer in LAYER_NAMES:
        assert measured[layer] == pytest.approx((activations[layer] == 0).float().mean().item())
    assert measured["conv4"] == 1.0
    assert 0 < measured["conv1"] < 1


@pytest.fixture(scope="module")
def trained(cifar_dir, tmp_path_factory):
    """The baseline and a strong L1 penalty on fc1, trained briefly; returns (models_dir, outcomes)."""
    models_dir = tmp_path_factory.mktemp("models")
    specs = [ModelSpec.baseline_of(0), ModelSpec("l1", "fc1", 2.0, 0)]
    outcomes = train_specs(specs, Recipe.from_options(**SMALL, dataset="cifar10"), cifar_dir, models_dir)
    assert [o.action for o in outcomes] == ["trained", "trained"]
    return models_dir, {o.spec.method: o for o in outcomes}


def test_short_training_beats_chance_clearly(trained):
    _, outcomes = trained
    assert outcomes["standard"].metadata["status"] == "complete"
    assert outcomes["standard"].metadata["clean_test_acc"] >= 0.6  # chance is 0.25 on four classes


def test_large_l1_strength_raises_the_sparsity_of_its_layer_above_the_baseline(trained):
    _, outcomes = trained
    baseline = outcomes["standard"].metadata["activation_sparsity"]
    regularised = outcomes["l1"].metadata["activation_sparsity"]
    assert regularised["fc1"] > baseline["fc1"] + 0.2


def test_checkpoint_round_trip_keeps_weights_and_metadata(trained, cifar_dir):
    models_dir, outcomes = trained
    spec = outcomes["l1"].spec
    path = spec.checkpoint_path(models_dir)
    assert path == models_dir / "cifar10" / "simple_cnn" / "l1_fc1_s2_seed0.pt"
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"state_dict", "metadata", "optimizer", "scheduler", "rng"}

    checkpoint = load_checkpoint(path)
    metadata = checkpoint["metadata"]
    assert metadata["spec"] == {"method": "l1", "layer": "fc1", "strength": 2.0, "seed": 0, "adv": None,
                                "adv_eps": None, "dataset": "cifar10", "model": "simple_cnn",
                                "name": "l1_fc1_s2_seed0"}
    assert metadata["status"] == "complete" and metadata["epochs_done"] == 2
    assert metadata["recipe"] == Recipe.from_options(**SMALL, dataset="cifar10").to_dict()
    assert metadata["num_classes"] == 4 and metadata["classes"] == ["airplane", "automobile", "bird", "cat"]
    assert set(metadata["activation_sparsity"]) == set(LAYER_NAMES)
    assert metadata["collapsed"] in (True, False)
    assert set(metadata["versions"]) == {"torch", "torchvision", "python"}
    # the machine that computed the weights: its CPU, the kernels torch chose on it, the thread count
    assert metadata["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert metadata["machine"]["threads"] == torch.get_num_threads() and metadata["machine"]["cpu"]

    model = model_from_checkpoint(checkpoint, CPU)
    assert not model.training
    data = load_training_data(cifar_dir, Recipe.from_options(**SMALL, dataset="cifar10"))
    again = evaluate_clean(model, data.test_x, data.test_y)
    assert again["accuracy"] == metadata["clean_test_acc"]
    assert again["activation_sparsity"] == metadata["activation_sparsity"]


@pytest.mark.parametrize("amp, schedule", [(False, "step"), (True, "step"), (False, "onecycle")])
def test_resumed_training_ends_with_the_weights_of_an_uninterrupted_run(cifar_dir, tmp_path, monkeypatch, amp,
                                                                       schedule):
    """In fp32 and in the fast setting (bf16 autocast with channels_last), and under a per-step schedule (its state
    is checkpointed). Dropout and augmentation both draw random numbers, so both must be restored to match."""
    recipe = Recipe.from_options(dataset="cifar10", classes=(0, 1), epochs=3, batch_size=4, train_per_class=4, test_per_class=5,
                                 amp=amp, schedule=schedule)  # small: bf16 is emulated, and slow, on CPUs without it
    spec = ModelSpec("dropout", "fc1", 0.5, 3)
    train_specs([spec], recipe, cifar_dir, tmp_path / "straight")

    real_epoch, calls = train_module.train_epoch, []

    def interrupted_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", interrupted_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_specs([spec], recipe, cifar_dir, tmp_path / "resumed")
    checkpoint = load_checkpoint(spec.checkpoint_path(tmp_path / "resumed"))
    partial = checkpoint["metadata"]
    assert (partial["status"], partial["epochs_done"], partial["channels_last"]) == ("in_progress", 1, amp)
    # as a file from before the layout was recorded: resumed by the default rule it was trained under
    del partial["channels_last"]
    torch.save(checkpoint, spec.checkpoint_path(tmp_path / "resumed"))

    monkeypatch.setattr(train_module, "train_epoch", real_epoch)
    outcome, = train_specs([spec], recipe, cifar_dir, tmp_path / "resumed")
    assert outcome.action == "resumed"
    straight = load_checkpoint(spec.checkpoint_path(tmp_path / "straight"))
    resumed = load_checkpoint(spec.checkpoint_path(tmp_path / "resumed"))
    for name, tensor in straight["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name
    assert resumed["metadata"]["epochs_done"] == 3 and resumed["metadata"]["channels_last"] is amp


def test_the_cuda_configuration_runs_on_a_cpu(cifar_dir, tmp_path):
    """bf16 autocast, channels_last model and batches, data on the device, 4096-image NES chunks: what a CUDA run
    does, here on the CPU, so that a crash of that path is caught without a GPU."""
    from attacks import NES, PGD

    recipe = Recipe.from_options(dataset="cifar10", classes=(0, 1), epochs=1, batch_size=16, train_per_class=16, test_per_class=5,
                                 amp=True)
    specs = [ModelSpec("dropout", "fc1", 0.3, 0), ModelSpec("l1", "conv3", 0.01, 0)]
    outcomes = train_specs(specs, recipe, cifar_dir, tmp_path, channels_last=True)
    assert [o.metadata["status"] for o in outcomes] == ["complete", "complete"]
    model = model_from_checkpoint(load_checkpoint(specs[1].checkpoint_path(tmp_path)), CPU)
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(3, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = model(x).argmax(1)
    x_adv, queries = NES(model, steps=2, samples=8, query_batch=4096, seed=0)(x, y)
    assert x_adv.shape == x.shape and queries.max() <= 2 + 2 * (2 * 8 + 1)
    assert PGD(model, steps=2, seed=0)(x, y)[0].shape == x.shape


def test_compiled_training_learns_the_same_weights_and_the_data_moves_to_the_device_once(cifar_dir, tmp_path,
                                                                                          monkeypatch):
    """--compile: the model's own weights are checkpointed (not the compiled wrapper's), the sparsity hook still
    feeds the penalty. Dynamo's eager backend stands in for Inductor, which would take minutes to build here."""
    recipe = Recipe.from_options(dataset="cifar10", classes=(0, 1), epochs=1, batch_size=16, train_per_class=16, test_per_class=5)
    specs = [ModelSpec("l1", "conv3", 0.5, 0), ModelSpec("dropout", "fc1", 0.3, 0)]
    moved = []
    to_device = train_module.TrainingData.to
    monkeypatch.setattr(train_module.TrainingData, "to", lambda self, device: moved.append(device) or to_device(
        self, device))
    train_specs(specs, recipe, cifar_dir, tmp_path / "eager")
    assert moved == [CPU, CPU]  # once per model (each training is a task of its own), not per epoch or batch
    compile_eager = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model: compile_eager(model, backend="eager"))
    train_specs(specs, recipe, cifar_dir, tmp_path / "compiled", compile=True)
    for spec in specs:
        eager = load_checkpoint(spec.checkpoint_path(tmp_path / "eager"))
        compiled = load_checkpoint(spec.checkpoint_path(tmp_path / "compiled"))
        assert compiled["state_dict"].keys() == eager["state_dict"].keys()
        assert all(torch.allclose(compiled["state_dict"][k], eager["state_dict"][k], atol=1e-5)
                   for k in eager["state_dict"])
        assert compiled["metadata"]["final_train_loss"] == pytest.approx(eager["metadata"]["final_train_loss"],
                                                                          rel=1e-4)


@pytest.mark.parametrize("classes", [None, (0, 1), (2, 5, 7)])
def test_quick_preset_is_sized_in_sgd_steps_past_the_initial_plateau(classes):
    """The original recipe plateaus at ln(10) for about 200 SGD steps on real images: --quick makes several
    times that many, whatever the classes, and an explicit --epochs still wins."""
    recipe = Recipe.from_options(quick=True, dataset="cifar10", classes=classes)
    assert recipe.epochs * recipe.steps_per_epoch >= 900 and recipe.batch_size == 32
    assert Recipe.from_options(quick=True, dataset="cifar10", classes=classes, epochs=2).epochs == 2
    assert Recipe.from_options(quick=False, dataset="cifar10").epochs == 100


def test_fashion_mnist_defaults_to_its_converged_recipe_and_cifar10_keeps_the_original():
    fashion = Recipe.from_options(dataset="fashion-mnist")
    assert (fashion.epochs, fashion.batch_size, fashion.lr, fashion.schedule, fashion.augment) == (
        3, 64, 0.06, "onecycle", "none")
    assert fashion.train_per_class is None and fashion.test_per_class is None  # all 60,000 and 10,000 images
    assert Recipe.from_options(dataset="fashion-mnist", schedule="step", epochs=2).schedule == "step"
    assert Recipe.from_options(dataset="cifar10") == Recipe() and Recipe().schedule == "step" and Recipe().epochs == 100
    assert Recipe.from_options(dataset="fashion-mnist", quick=True).schedule == "step"  # --quick is unchanged
    # a checkpoint's recipe from before the schedule and adversarial knobs compares equal to the step schedule
    stored = {key: value for key, value in Recipe().to_dict().items()
              if key not in ("schedule", "adv_steps", "adv_step_size")}
    assert Recipe().differences(stored) == []
    assert Recipe(schedule="onecycle").differences(stored) == ["schedule: 'step' -> 'onecycle'"]
