import hashlib
import pickle
import shutil
import tarfile
import urllib.error

import numpy as np
import pytest
import torch
import torchvision.datasets.utils

import data.cifar as cifar
from cifar_fixture import CLASS_NAMES, PIXELS, make_cifar_fixture, write_cifar_layout
from common.errors import ConfigError, FileProblem
from data.augment import augment_batch
from data.cifar import load_cifar10
from data.subsets import select_classes, validate_classes
from data.loader import TensorLoader


def _raw_batch(path):
    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="bytes")


# --- reading the official layout -------------------------------------------------------------

def test_reads_official_layout(cifar_dir):
    data = load_cifar10(cifar_dir, download=False)
    folder = cifar_dir / "cifar-10-batches-py"
    assert data.train_x.shape == (500, 3, 32, 32) and data.train_x.dtype == torch.uint8
    assert data.test_x.shape == (200, 3, 32, 32) and data.test_x.dtype == torch.uint8
    assert data.train_y.dtype == torch.int64 and data.test_y.dtype == torch.int64
    assert data.classes == list(CLASS_NAMES)
    raw = [_raw_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    assert torch.equal(data.train_y, torch.tensor(sum((batch[b"labels"] for batch in raw), [])))
    assert torch.equal(data.train_x.reshape(500, PIXELS), torch.from_numpy(np.concatenate([b[b"data"] for b in raw])))
    test = _raw_batch(folder / "test_batch")
    assert torch.equal(data.test_y, torch.tensor(test[b"labels"]))
    assert torch.bincount(data.train_y).tolist() == [50] * 10


def test_pixel_layout_round_trips(tmp_path):
    channel, row, column = 2, 5, 17
    train_rows = np.zeros((10, PIXELS), np.uint8)
    train_rows[0, channel * 1024 + row * 32 + column] = 200
    test_rows = np.zeros((2, PIXELS), np.uint8)
    test_rows[1, 0 * 1024 + 31 * 32 + 0] = 77  # red, bottom-left
    write_cifar_layout(tmp_path, train_rows, list(range(10)), test_rows, [3, 4])
    data = load_cifar10(tmp_path, download=False)
    assert data.train_x[0, channel, row, column] == 200 and data.train_x.sum() == 200
    assert data.test_x[1, 0, 31, 0] == 77 and data.test_x.sum() == 77
    assert data.train_y.tolist() == list(range(10)) and data.test_y.tolist() == [3, 4]


# --- class subsets -------------------------------------------------------------------------

def test_select_classes_keeps_order_and_relabels():
    y = torch.tensor([0, 8, 1, 8, 5, 1, 9])
    x = torch.arange(len(y)).reshape(-1, 1, 1, 1).to(torch.uint8)
    x_sub, y_sub = select_classes(x, y, [8, 1], 10)
    assert y_sub.tolist() == [0, 1, 0, 1]
    assert x_sub.flatten().tolist() == [1, 2, 3, 5]


def test_select_classes_on_data_set(cifar_dir):
    data = load_cifar10(cifar_dir, download=False)
    x, y = select_classes(data.train_x, data.train_y, [0, 1, 8, 9], 10)
    assert len(x) == len(y) == 200 and sorted(set(y.tolist())) == [0, 1, 2, 3]
    assert torch.equal(x[y == 2], data.train_x[data.train_y == 8])


@pytest.mark.parametrize("classes, message", [
    ([1, 3, 1], "more than once"),
    ([0, 10], "out of range"),
    ([-1, 2], "out of range"),
    ([4], "at least two"),
])
def test_validate_classes_rejects_bad_lists(classes, message):
    with pytest.raises(ConfigError, match=message) as error:
        validate_classes(classes, "cifar10")
    assert error.value.field == "classes" and "\n" not in str(error.value)


def test_validate_classes_defaults_to_all():
    assert validate_classes(None, "cifar10") == list(range(10))
    assert validate_classes([9, 0], "cifar10") == [9, 0]


# --- augmentation ----------------------------------------------------------------------------

def _generator(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", ["standard", "original"])
def test_augmentation_keeps_shape_range_and_is_random(kind):
    x = torch.rand(64, 3, 32, 32, generator=_generator(0))
    first, second = augment_batch(x, kind), augment_batch(x, kind)
    for out in (first, second):
        assert out.shape == x.shape and out.dtype == x.dtype
        assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(first, second)
    assert not torch.equal(first, x)


@pytest.mark.parametrize("kind", ["standard", "original"])
def test_augmentation_is_deterministic_given_generator(kind):
    x = torch.rand(16, 3, 32, 32, generator=_generator(0))
    assert torch.equal(augment_batch(x, kind, _generator(5)), augment_batch(x, kind, _generator(5)))
    assert not torch.equal(augment_batch(x, kind, _generator(5)), augment_batch(x, kind, _generator(6)))


def test_no_augmentation_is_identity():
    x = torch.rand(4, 3, 32, 32)
    assert augment_batch(x, "none") is x


def test_standard_is_a_padded_crop_possibly_flipped():
    batch = 128
    x = torch.rand(batch, 3, 32, 32, generator=_generator(1))
    out = augment_batch(x, "standard", _generator(2))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    # Every candidate (shift, flip) of every image; each output must be exactly one of them.
    windows = padded.unfold(2, 32, 1).unfold(3, 32, 1)  # (B, C, 9, 9, 32, 32)
    windows = windows.permute(0, 2, 3, 1, 4, 5).reshape(batch, 81, 3, 32, 32)
    candidates = torch.cat([windows, windows.flip(-1)], dim=1)
    # Random pixels make the red plane enough to identify the candidate; then all channels must agree.
    matches = (candidates[:, :, 0] == out[:, None, 0]).flatten(2).all(dim=2)
    assert matches.any(dim=1).all()
    choice = matches.float().argmax(dim=1)
    assert torch.equal(candidates[torch.arange(batch), choice], out)
    flipped, shift = choice >= 81, choice % 81
    assert 0.35 < flipped.float().mean() < 0.65
    assert len(shift.unique()) > 50  # the offsets are spread over all 81 (about 64 distinct expected)
    assert (shift == 40).float().mean() < 0.1  # 40 = no shift, 1/81 expected


def test_original_flips_about_half_and_keeps_the_centre():
    # Left half bright, right half dark: the flip decides which side of the output is brighter.
    x = torch.zeros(512, 3, 32, 32)
    x[..., :16] = 1.0
    out = augment_batch(x, "original", _generator(3))
    left, right = out[..., :16].mean(dim=(1, 2, 3)), out[..., 16:].mean(dim=(1, 2, 3))
    assert 0.35 < (left > right).float().mean() < 0.65
    # Crops of a constant image: rotation by <= 8 degrees keeps the crop's centre inside the image.
    ones = augment_batch(torch.ones(512, 3, 32, 32), "original", _generator(4))
    assert torch.allclose(ones[..., 15:17, 15:17], torch.ones(()))
    assert (ones < 1).any()  # rotations bring in zero-filled corners
    # Resized crops zoom in: the stripe count of an image varies between outputs.
    stripes = (torch.arange(32) // 2 % 2).float().expand(256, 3, 32, 32)
    zoomed = augment_batch(stripes, "original", _generator(5))
    edges = (zoomed[:, 0, 16, 1:] - zoomed[:, 0, 16, :-1]).abs().gt(0.5).sum(dim=1)
    assert edges.min() < 8 and edges.max() >= 14


# --- TensorLoader ----------------------------------------------------------------------------

def _ids_loader(n=50, batch_size=8, shuffle=True, augment="none", seed=0, drop_last=False):
    ids = torch.arange(n)
    images = ids.to(torch.uint8).reshape(n, 1, 1, 1).expand(n, 3, 32, 32)
    return TensorLoader(images, ids, batch_size, shuffle, augment, "cpu", seed, drop_last)


def _batches(loader, epoch):
    loader.set_epoch(epoch)
    return [(x.clone(), y.clone()) for x, y in loader]


def test_loader_covers_every_sample_once_per_epoch():
    loader = _ids_loader()
    assert len(loader) == 7
    batches = _batches(loader, 0)
    assert len(batches) == 7 and [len(y) for _, y in batches] == [8] * 6 + [2]
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(50)) and seen.tolist() != list(range(50))
    for x, y in batches:
        assert x.dtype == torch.float32 and torch.allclose(x[:, 0, 0, 0] * 255, y.float())


def test_loader_without_shuffle_keeps_order_and_drop_last():
    loader = _ids_loader(shuffle=False, drop_last=True)
    assert len(loader) == 6
    assert torch.cat([y for _, y in loader]).tolist() == list(range(48))


def test_loader_is_deterministic_per_seed_and_epoch():
    first = _batches(_ids_loader(augment="standard"), 3)
    again = _batches(_ids_loader(augment="standard"), 3)
    assert all(torch.equal(a, b) and torch.equal(c, d) for (a, c), (b, d) in zip(first, again))
    next_epoch = _batches(_ids_loader(augment="standard"), 4)
    other_seed = _batches(_ids_loader(augment="standard", seed=1), 3)
    order = torch.cat([y for _, y in first])
    assert not torch.equal(order, torch.cat([y for _, y in next_epoch]))
    assert not torch.equal(order, torch.cat([y for _, y in other_seed]))


def test_loader_advances_epoch_by_itself():
    loader = _ids_loader()
    orders = [torch.cat([y for _, y in loader]) for _ in range(2)]
    assert not torch.equal(*orders)
    loader.set_epoch(1)
    assert torch.equal(torch.cat([y for _, y in loader]), orders[1])


# --- missing and damaged data ------------------------------------------------------------------

def _fail_download(*args, **kwargs):
    raise urllib.error.URLError("no network")


def test_missing_data_offline_names_archive_and_flag(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", _fail_download)
    for download in (True, False):
        with pytest.raises(FileProblem) as error:
            load_cifar10(tmp_path / "data", download=download)
        message = str(error.value)
        assert "cifar-10-python.tar.gz" in message and error.value.location == "data_dir"
        assert str(tmp_path / "data") in message and "\n" not in message


def _copy_fixture(cifar_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(cifar_dir, copy)
    return copy


def test_corrupt_pickle_names_the_file(cifar_dir, tmp_path):
    root = _copy_fixture(cifar_dir, tmp_path)
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x02not a pickle at all")
    with pytest.raises(FileProblem, match="data_batch_3"):
        load_cifar10(root, download=False)


@pytest.mark.parametrize("content", [
    {b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]},
    {b"data": np.zeros((2, PIXELS), np.uint8), b"labels": [0, 12]},
    {b"weights": [1, 2, 3]},
    [1, 2, 3],
    {b"data": shutil.copy, b"labels": []},  # a pickled function: refused before anything runs
])
def test_foreign_pickle_names_the_file(cifar_dir, tmp_path, content):
    root = _copy_fixture(cifar_dir, tmp_path)
    with open(root / "cifar-10-batches-py" / "test_batch", "wb") as handle:
        pickle.dump(content, handle, protocol=2)
    with pytest.raises(FileProblem, match="test_batch"):
        load_cifar10(root, download=False)


def test_archive_in_data_dir_is_checked_and_extracted(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", _fail_download)
    source = make_cifar_fixture(tmp_path / "source", n_train_per_class=2, n_test_per_class=1)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    archive = data_dir / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    with pytest.raises(FileProblem, match="MD5"):
        load_cifar10(data_dir)
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    data = load_cifar10(data_dir)
    assert data.train_x.shape == (20, 3, 32, 32) and data.test_y.shape == (10,)
