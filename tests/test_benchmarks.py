"""The benchmarks under bench/ are not run by the suite (they time things); they must at least parse."""
import py_compile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda path: path.name)
def test_every_benchmark_compiles(script, tmp_path):
    py_compile.compile(str(script), cfile=str(tmp_path / "compiled.pyc"), doraise=True)


def test_the_pass_counter_credits_every_image_through_the_model_to_the_measure_that_made_it():
    """bench/passes.py's counter, on which the --gpu study's expected time and the evaluation's cost rest: a forward
    pass counts its images, each input-gradient backward through a call counts them again (FAB's per-class backward
    passes of one forward each), and a pass is credited to the evaluation's measure it was made in."""
    import sys

    import torch
    from attacks import PGD
    from evaluation.metrics import run_attack
    from models.simple_cnn import SimpleCNN

    sys.path.insert(0, str(BENCH.parent))
    from bench.passes import PassCounter

    class Evaluation:  # what ModelEvaluation offers the counter: a timed(name) context
        from contextlib import nullcontext

        def timed(self, name):
            return self.nullcontext()

    torch.manual_seed(0)
    model = SimpleCNN(input_shape=(1, 28, 28), num_classes=10).eval()
    counter = PassCounter(model, Evaluation)
    x = torch.rand(3, 1, 28, 28, requires_grad=True)
    with Evaluation().timed("checks_s"):
        logits = model(x)
        for k in range(2):
            logits[:, k].sum().backward(retain_graph=True)
    assert (counter.forward["checks_s"], counter.backward["checks_s"]) == (3, 6)
    assert counter.work("checks_s") == 3 + 6
    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        labels = model(images).argmax(1)  # every image starts correct, so PGD takes gradient steps on it
    with Evaluation().timed("pgd_s"):
        run_attack(PGD(model, eps=0.1, alpha=0.01, steps=5, restarts=1, seed=0), images, labels, batch_size=4)
    assert 0 < counter.backward["pgd_s"] <= 4 * 5 and counter.forward["pgd_s"] >= counter.backward["pgd_s"]
    assert counter.measures() == ["checks_s", "setup", "pgd_s"]  # the labels above: outside any measure
