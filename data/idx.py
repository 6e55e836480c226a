"""Data sets shipped as MNIST's four idx files (MNIST, Fashion-MNIST), gzipped or not, read into uint8 tensors.

Parsed here, not by torchvision's MNIST (which wants them unpacked in its raw/ folder and asserts on a bad file), to
name the file and the fix; the two data sets share file names, so their official files are told apart by MD5 (of
the published .gz) or SHA-256 (of the unpacked content, which survives recompression such as Debian's).
"""
import gzip
import hashlib
import struct
import urllib.error
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from common.errors import FileProblem
from data.dataset import Dataset, ImageData
from data.files import decode_once, reading, stamps

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # unsigned bytes, 3 dimensions / 1 dimension
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class IdxSource:
    """Where one idx data set's files may be and how to recognise them."""

    title: str
    image_size: tuple  # (height, width)
    num_classes: int
    torchvision_folder: str  # torchvision's class (and folder) of it, whose ``mirrors`` and ``resources`` are the
    # official files; imported only when needed (seconds a command stopping at a bad option should not wait)
    folder: str  # its own folder under --data-dir, e.g. "fashion-mnist"
    system_folders: tuple = ()  # where an operating system's package puts the files
    install_hint: str = ""  # how to get them without network, e.g. an apt-get command
    content_sha256: tuple = ()  # (file, SHA-256 of the unpacked official content)

    @property
    def torchvision_class(self):
        import torchvision.datasets
        return getattr(torchvision.datasets, self.torchvision_folder)

    def candidate_folders(self, data_dir):
        data_dir = Path(data_dir)
        return (data_dir / self.torchvision_folder / "raw", data_dir / self.folder, data_dir,
                *map(Path, self.system_folders))


SOURCES = []  # every idx data set's files (``idx_dataset`` registers them): they share file names


def idx_dataset(source, name, class_names, **protocol):
    """The ``Dataset`` of ``source`` with ``protocol``'s fields; its reader refuses the official files of every other
    registered idx data set, so that the data set modules need not know each other."""
    SOURCES.append(source)

    def read(data_dir, download=True) -> ImageData:
        others = tuple(other for other in SOURCES if other is not source)
        return replace(read_idx_dataset(source, data_dir, download, others), classes=list(class_names))

    # Both idx data sets have 60,000 training images in balanced classes and budgets written as plain numbers.
    protocol = {"train_per_class": 60_000 // source.num_classes, "eps_denominator": None, **protocol}
    system = "".join(f", or {folder}/" + (f" ({source.install_hint.split(': ')[-1]})" if source.install_hint else "")
                     for folder in source.system_folders)
    return Dataset(
        name=name, title=source.title, input_shape=(1, *source.image_size), class_names=tuple(class_names),
        source=(f"{', '.join(f + '.gz' for f in FILES[:3])} and {FILES[3]}.gz (or unpacked) in --data-dir, its "
                f"{source.folder}/ or {source.torchvision_folder}/raw/ folder{system}; downloaded with "
                "torchvision's MD5 check when missing and online"),
        read=read, **protocol)


def read_idx_dataset(source, data_dir, download, others=()):
    """``source``'s four files from the first folder holding any of them (downloaded when none does and ``download``
    is on); the official files of ``others`` are refused."""
    folder = _find_folder(source, data_dir)
    if folder is None and download:
        folder = _download(source, data_dir)
    if folder is None:
        raise _missing(source, data_dir, "" if download else " (download off)")
    paths = _paths(folder)
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise FileProblem(f"{folder} holds part of {source.title} but not {', '.join(missing)} (.gz or unpacked); "
                          f"add the missing files", "data_dir")
    key = (source.title, str(folder.resolve()), stamps(paths.values()))
    return decode_once(key, lambda: _read_folder(source, paths, others))


def _paths(folder):
    """file -> its path in ``folder`` (the .gz where both exist), or None."""
    return {name: next((path for path in (folder / f"{name}.gz", folder / name) if path.is_file()), None)
            for name in FILES}


def _find_folder(source, data_dir):
    return next((folder for folder in source.candidate_folders(data_dir)
                 if folder.is_dir() and any(_paths(folder).values())), None)


def _missing(source, data_dir, detail):
    names = ", ".join(f"{name}.gz" for name in FILES)
    where = f" or in {' or '.join(source.system_folders)}" if source.system_folders else ""
    hint = f"; {source.install_hint}" if source.install_hint else ""
    return FileProblem(f"{source.title} is not in {data_dir}{where}{detail}: put {names} in "
                       f"{Path(data_dir) / source.folder}{hint}", "data_dir")


def _download(source, data_dir):
    """Fetch the official files with their MD5 check; None when no mirror answers (offline)."""
    from torchvision.datasets.utils import download_url

    folder = Path(data_dir) / source.torchvision_folder / "raw"
    for name, md5 in source.torchvision_class.resources:
        for mirror in source.torchvision_class.mirrors:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                download_url(f"{mirror}{name}", str(folder), filename=name, md5=md5)
                break
            except (urllib.error.URLError, OSError, RuntimeError):
                continue
        else:
            return None
    return folder


def _read_folder(source, paths, others):
    raw = {name: _read_bytes(path) for name, path in paths.items()}
    _refuse_other_data_sets(source, paths, raw, others)
    train_x = _images(paths[TRAIN_IMAGES], raw[TRAIN_IMAGES], source)
    train_y = _labels(paths[TRAIN_LABELS], raw[TRAIN_LABELS], source, len(train_x))
    test_x = _images(paths[TEST_IMAGES], raw[TEST_IMAGES], source)
    test_y = _labels(paths[TEST_LABELS], raw[TEST_LABELS], source, len(test_x))
    return ImageData(train_x, train_y, test_x, test_y, [])


def _read_bytes(path):
    """(file bytes, unpacked bytes)."""
    with reading(path):
        content = path.read_bytes()
    if not content.startswith(GZIP_MAGIC):
        return content, content
    try:
        return content, gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as err:
        raise FileProblem(f"{path} is a damaged gzip file ({err}); replace it with the official file",
                          "data_dir") from None


def _refuse_other_data_sets(source, paths, raw, others):
    for other in others:
        md5 = {name.removesuffix(".gz"): md5 for name, md5 in other.torchvision_class.resources}
        sha = dict(other.content_sha256)
        for name, (packed, unpacked) in raw.items():
            if (hashlib.md5(packed).hexdigest() == md5.get(name)
                    or (name in sha and hashlib.sha256(unpacked).hexdigest() == sha[name])):
                raise FileProblem(f"{paths[name]} is {other.title}'s {name}, not {source.title}'s; put "
                                  f"{source.title}'s files in {source.folder}/ of the data folder", "data_dir")


def _header(path, data, magic, dims, source):
    """An idx file's shape (big-endian int32s after the magic number) and its values."""
    if len(data) < 4 + 4 * dims or int.from_bytes(data[:4], "big") != magic:
        kind = "image" if magic == IMAGES_MAGIC else "label"
        raise _foreign(path, source, f"no idx {kind} header (magic {magic:#010x})")
    shape = struct.unpack_from(f">{dims}I", data, 4)
    expected = 4 + 4 * dims + int(np.prod(shape))
    if len(data) != expected:
        raise _foreign(path, source, f"{len(data)} bytes where its header {shape} needs {expected}: truncated")
    return shape, np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)


def _images(path, raw, source):
    shape, pixels = _header(path, raw[1], IMAGES_MAGIC, 3, source)
    if shape[1:] != tuple(source.image_size):
        raise _foreign(path, source, f"images are {shape[1]}x{shape[2]}, {source.title}'s are "
                                     f"{source.image_size[0]}x{source.image_size[1]}")
    return torch.from_numpy(pixels.copy()).reshape(shape[0], 1, *shape[1:])


def _labels(path, raw, source, count):
    shape, labels = _header(path, raw[1], LABELS_MAGIC, 1, source)
    if shape[0] != count:
        raise _foreign(path, source, f"{shape[0]} labels for {count} images")
    if labels.size and labels.max() >= source.num_classes:
        raise _foreign(path, source, f"labels outside 0..{source.num_classes - 1}")
    return torch.from_numpy(labels.astype(np.int64))


def _foreign(path, source, reason):
    return FileProblem(f"{path} is corrupt or not a {source.title} idx file ({reason}); replace it with the "
                       f"official file", "data_dir")
