"""CIFAR-10 (the default data set) from its official python archive, read into uint8 tensors. Our own reader, not
torchvision's CIFAR10 (whose per-file MD5 check refuses the tests' generated data), so tests share the real path."""
import pickle
import urllib.error
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from common.errors import FileProblem
from data.dataset import Dataset, ImageData
from data.files import decode_once, reading, stamps

ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)

# The only globals a CIFAR pickle needs (numpy arrays under numpy 1's and 2's module names, py2/py3 bytes); anything
# else marks a foreign file, and refusing it also keeps pickle from running code.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def load_cifar10(data_dir, download=True):
    """Read CIFAR-10 from ``data_dir/cifar-10-batches-py``, fetching the official archive if it is missing."""
    data_dir = Path(data_dir)
    folder = data_dir / BATCH_FOLDER
    if not folder.is_dir():
        _fetch_archive(data_dir, download)
    paths = [folder / name for name in (*TRAIN_BATCHES, TEST_BATCH, META_FILE)]
    for path in paths:
        if not path.is_file():
            raise FileProblem(f"{path} is missing; delete {folder} and let the program extract {ARCHIVE_NAME} again",
                              "data_dir")
    data = decode_once(("CIFAR-10", str(folder.resolve()), stamps(paths)), lambda: _read_batch_folder(folder))
    return replace(data, classes=list(data.classes))


def _missing(data_dir, reason):
    return FileProblem(
        f"CIFAR-10 is not in {data_dir} ({reason}); download {ARCHIVE_URL} and put {ARCHIVE_NAME} "
        f"(or its extracted {BATCH_FOLDER}/ folder) in {data_dir}", "data_dir")


def _fetch_archive(data_dir, download):
    # imported here: torchvision's import takes seconds that a command stopping at a bad option should not wait for
    from torchvision.datasets.utils import check_integrity, download_and_extract_archive, extract_archive

    archive = data_dir / ARCHIVE_NAME
    if archive.is_file():
        if not check_integrity(str(archive), ARCHIVE_MD5):
            raise FileProblem(f"{archive} is damaged (MD5 is not {ARCHIVE_MD5}); delete it and download it again "
                              f"from {ARCHIVE_URL}", "data_dir")
        try:
            extract_archive(str(archive), str(data_dir))
        except (OSError, EOFError) as err:
            raise FileProblem(f"cannot extract {archive} into {data_dir} ({err}); free some space", "data_dir")
    elif not download:
        raise _missing(data_dir, f"no {BATCH_FOLDER}/ folder and no {ARCHIVE_NAME}")
    else:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            download_and_extract_archive(ARCHIVE_URL, str(data_dir), filename=ARCHIVE_NAME, md5=ARCHIVE_MD5)
        except (urllib.error.URLError, OSError, RuntimeError, EOFError) as err:
            reason = getattr(err, "reason", None) or err
            raise _missing(data_dir, f"download failed: {reason}") from None
    if not (data_dir / BATCH_FOLDER).is_dir():
        raise _missing(data_dir, f"{ARCHIVE_NAME} holds no {BATCH_FOLDER}/ folder")


def _read_pickle(path):
    try:
        with reading(path), open(path, "rb") as handle:
            content = _CifarUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as err:
        raise _foreign(path, f"not a CIFAR pickle: {err}") from None
    if not isinstance(content, dict):
        raise _foreign(path, "not a pickled dict")
    # Python 2 pickles (the official archive) have bytes keys; accept str keys too.
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in content.items()}


def _foreign(path, reason):
    return FileProblem(f"{path} is corrupt or not a CIFAR-10 batch ({reason}); delete {path.parent} and extract "
                       f"{ARCHIVE_NAME} again", "data_dir")


def _read_batch(path):
    """One batch file -> (uint8 (N, 3, 32, 32), int64 (N,)). Each row of ``data`` is 3072 bytes: the red 32x32
    plane, then green, then blue, each row-major, so a plain reshape gives channel, row, column."""
    content = _read_pickle(path)
    if "data" not in content or "labels" not in content:
        raise _foreign(path, "no data/labels entries")
    data = np.asarray(content["data"])
    labels = np.asarray(content["labels"])
    pixels = int(np.prod(IMAGE_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != pixels:
        raise _foreign(path, f"data is {data.dtype} {data.shape}, expected uint8 (N, {pixels})")
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise _foreign(path, f"{labels.shape[0] if labels.ndim else 0} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise _foreign(path, f"labels outside 0..{NUM_CLASSES - 1}")
    images = torch.from_numpy(np.ascontiguousarray(data)).reshape(-1, *IMAGE_SHAPE)
    return images, torch.from_numpy(labels.astype(np.int64))


def _read_class_names(path):
    names = _read_pickle(path).get("label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise _foreign(path, f"label_names is not a list of {NUM_CLASSES} names")
    return [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in names]


def _read_batch_folder(folder):
    train = [_read_batch(folder / name) for name in TRAIN_BATCHES]
    train_x, train_y = (torch.cat(part) for part in zip(*train))
    test_x, test_y = _read_batch(folder / TEST_BATCH)
    return ImageData(train_x, train_y, test_x, test_y, _read_class_names(folder / META_FILE))


CIFAR10 = Dataset(
    name="cifar10", title="CIFAR-10", input_shape=IMAGE_SHAPE,
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    source=f"{BATCH_FOLDER}/ or {ARCHIVE_NAME} in --data-dir, downloaded from {ARCHIVE_URL} when missing",
    eps=8 / 255, step=1 / 255, eps_sweep=(1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255), eps_denominator=255,
    augment="standard", augment_reason="a mirrored car, bird or ship is still one",
    train_per_class=5000, read=load_cifar10)
