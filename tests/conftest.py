import pytest

from cifar_fixture import make_cifar_fixture
from training.precision import PIN_ENV


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory):
    """A --data-dir holding the generated stand-in for CIFAR-10 (official layout, 500 train / 200 test images)."""
    return make_cifar_fixture(tmp_path_factory.mktemp("cifar"))


@pytest.fixture(scope="session", autouse=True)
def pinned_training_mode(tmp_path_factory):
    """No test depends on the CPU it runs on or on timing: training's precision and layout are pinned to fp32
    contiguous (in this process and the commands it starts), so the measuring probe never runs; a test that
    exercises the choice unsets the pin. Any cache a test writes goes to a temporary folder, never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PIN_ENV, "fp32")
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread_per_worker():
    """Under pytest-xdist (pytest.ini: one worker per core) each worker computes on one thread, so that the workers
    do not oversubscribe the cores they share (OMP_NUM_THREADS 1: main.py's --threads default follows it); a test that
    needs another count sets it itself."""
    import os

    import torch
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:  # and the commands run in-process: their default is every core
        patch.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(previous)
