"""The benchmarks under bench/ are not run by the suite (they time things); they must at least parse."""
import py_compile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda path: path.name)
def test_every_benchmark_compiles(script, tmp_path):
    py_compile.compile(str(script), cfile=str(tmp_path / "compiled.pyc"), doraise=True)


def study_cost():
    import importlib.util
    spec = importlib.util.spec_from_file_location("study_cost", BENCH / "study_cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_study_cost_counts_every_image_through_the_model_once_per_pass():
    """bench/study_cost.py's counter, on which the --gpu study's expected time rests: a forward pass counts its
    images, each backward through a call counts them again (FAB's per-class backward passes of one forward), a leaf
    reused by two calls counts once per call, and a pass is credited to the evaluation step on the stack."""
    import torch
    from attacks import PGD
    from evaluation.metrics import run_attack
    from models.simple_cnn import SimpleCNN

    module = study_cost()
    torch.manual_seed(0)
    model = SimpleCNN(input_shape=(1, 28, 28), num_classes=10).eval()
    counter = module.PassCounter()
    handle = counter.attach(model)
    x = torch.rand(3, 1, 28, 28, requires_grad=True)

    def run_checks():  # named as the evaluation's step is: passes made under it are the checks'
        logits = model(x)
        for k in range(2):
            logits[:, k].sum().backward(retain_graph=True)
        (model(x).sum() + model(x).sum()).backward()

    run_checks()
    assert (counter.forward["checks"], counter.backward["checks"]) == (9, 3 * 2 + 3 * 2)
    assert counter.kinds["checks"] == "checks"
    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        labels = model(images).argmax(1)  # every image starts correct, so PGD takes gradient steps on it
    run_attack(model, PGD(model, eps=0.1, alpha=0.01, steps=5, restarts=1, seed=0), images, labels,
               torch.device("cpu"), 4, desc="pgd")
    assert counter.backward["pgd"] > 0 and counter.kinds["pgd"] == "white-box"
    assert counter.backward["pgd"] <= 4 * 5 and counter.forward["pgd"] >= counter.backward["pgd"]
    handle.remove()
    model(x)
    assert sum(counter.forward.values()) == 9 + 4 + counter.forward["pgd"]  # detached: nothing more counted
