"""A small, learnable stand-in for Fashion-MNIST / MNIST, written as the four official idx files.

Each class has its own grey level and its own stripe angle, with random phase, brightness and pixel noise, so a
small CNN beats chance within a few dozen steps while no single pixel gives the class away.
"""
import gzip
from pathlib import Path

import numpy as np

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array, magic):
    """An idx file's bytes: magic, one big-endian int32 per dimension, then the uint8 values."""
    array = np.asarray(array, dtype=np.uint8)
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def class_images(labels, rng, size=28):
    count = len(labels)
    rows, cols = np.mgrid[0:size, 0:size]
    angle = np.pi * np.asarray(labels) / 10
    phase = rng.uniform(0, 2 * np.pi, count)
    along = np.cos(angle)[:, None, None] * cols + np.sin(angle)[:, None, None] * rows
    level = 0.5 + 0.4 * (np.asarray(labels) / 9 - 0.5)
    images = level[:, None, None] + 0.2 * np.sin(2 * np.pi * along / 7 + phase[:, None, None])
    images += rng.uniform(-0.05, 0.05, count)[:, None, None] + rng.normal(0, 0.08, (count, size, size))
    return np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)


def make_split(per_class, rng, size=28):
    labels = rng.permutation(np.repeat(np.arange(10), per_class))
    return class_images(labels, rng, size), labels


def write_idx_files(folder, train, test, gz=True):
    """Write (images, labels) pairs as the four files in ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    contents = (idx_bytes(train[0], IMAGES_MAGIC), idx_bytes(train[1], LABELS_MAGIC),
                idx_bytes(test[0], IMAGES_MAGIC), idx_bytes(test[1], LABELS_MAGIC))
    for name, content in zip(NAMES, contents):
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
        else:
            (folder / name).write_bytes(content)
    return folder


def make_idx_fixture(folder, n_train_per_class=30, n_test_per_class=10, seed=0, gz=True):
    """Write the stand-in in ``folder`` (e.g. ``data_dir/fashion-mnist``) and return the folder."""
    rng = np.random.default_rng(seed)
    return write_idx_files(folder, make_split(n_train_per_class, rng), make_split(n_test_per_class, rng), gz)
