"""A small, learnable stand-in for CIFAR-10, written in the official cifar-10-batches-py layout.

Each class has its own colour and its own stripe orientation, with random
phase, brightness and pixel noise, so a small CNN beats chance within a couple
of epochs while no single pixel gives the class away.
"""
import pickle
from pathlib import Path

import numpy as np

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCH_FOLDER = "cifar-10-batches-py"
PIXELS = 3 * 32 * 32


def write_cifar_layout(root, train_rows, train_labels, test_rows, test_labels, label_names=CLASS_NAMES):
    """Write rows of 3072 uint8 (red plane, green plane, blue plane; each row-major) as the official pickles.

    The training rows are split over data_batch_1..5 like the real archive; the
    pickles use protocol 2 with bytes keys, as the Python 2 originals do.
    """
    folder = Path(root) / BATCH_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    train_parts = zip(np.array_split(np.asarray(train_rows, np.uint8), 5), np.array_split(np.asarray(train_labels), 5))
    for number, (rows, labels) in enumerate(train_parts, start=1):
        _dump(folder / f"data_batch_{number}", _batch(f"training batch {number} of 5", rows, labels))
    _dump(folder / "test_batch", _batch("testing batch 1 of 1", np.asarray(test_rows, np.uint8), np.asarray(test_labels)))
    meta = {
        b"label_names": [name.encode() for name in label_names],
        b"num_cases_per_batch": int(np.ceil(len(train_labels) / 5)),
        b"num_vis": PIXELS,
    }
    _dump(folder / "batches.meta", meta)
    return Path(root)


def _batch(name, rows, labels):
    return {
        b"batch_label": name.encode(),
        b"labels": [int(label) for label in labels],
        b"data": rows,
        b"filenames": [f"image_{i}.png".encode() for i in range(len(labels))],
    }


def _dump(path, content):
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=2)


def _class_images(labels, rng):
    """Float images (N, 3, 32, 32) in [0, 1] whose colour and stripe direction depend on the label."""
    count = len(labels)
    hues = np.arange(10) / 10
    # Colours spread round the hue circle: channel k follows a cosine shifted by a third of a turn.
    palette = 0.5 + 0.45 * np.cos(2 * np.pi * (hues[:, None] - np.arange(3)[None, :] / 3))
    orientation = np.pi * labels / 10
    rows, cols = np.mgrid[0:32, 0:32]
    phase = rng.uniform(0, 2 * np.pi, count)
    along = np.cos(orientation)[:, None, None] * cols + np.sin(orientation)[:, None, None] * rows
    stripes = np.sin(2 * np.pi * along / 6 + phase[:, None, None])
    brightness = rng.uniform(-0.05, 0.05, count)
    images = (
        palette[labels][:, :, None, None]
        + 0.2 * stripes[:, None]
        + brightness[:, None, None, None]
        + rng.normal(0, 0.1, (count, 3, 32, 32))
    )
    return np.clip(images, 0, 1)


def _make_split(per_class, rng):
    labels = rng.permutation(np.repeat(np.arange(10), per_class))
    rows = np.round(_class_images(labels, rng) * 255).astype(np.uint8).reshape(len(labels), PIXELS)
    return rows, labels


def make_cifar_fixture(root, n_train_per_class=50, n_test_per_class=20, seed=0):
    """Write the stand-in data set under ``root/cifar-10-batches-py`` and return ``Path(root)`` (the --data-dir)."""
    rng = np.random.default_rng(seed)
    train_rows, train_labels = _make_split(n_train_per_class, rng)
    test_rows, test_labels = _make_split(n_test_per_class, rng)
    return write_cifar_layout(root, train_rows, train_labels, test_rows, test_labels)
