import pytest

from cifar_fixture import make_cifar_fixture


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory):
    """A --data-dir holding the generated stand-in for CIFAR-10 (official layout, 500 train / 200 test images)."""
    return make_cifar_fixture(tmp_path_factory.mktemp("cifar"))
