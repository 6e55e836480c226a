"""Small generated class-folder data sets (train/<class>/*, test/<class>/*), as folders or archives, with the
cifar_fixture's learnable images, in CIFAR-10's class names (the ``cifar10-jpeg`` record's)."""
import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from cifar_fixture import CLASS_NAMES, _class_images


def encode(image, fmt):
    """uint8 (C, H, W) -> file bytes in ``fmt`` ("PNG", lossless, or "JPEG")."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(buffer, fmt)
    return buffer.getvalue()


def make_class_folders(root, n_train_per_class=4, n_test_per_class=2, fmt="PNG", seed=0):
    """Write ``root/train/<class>/NNNN.png`` and ``root/test/...``; returns (root, {split: (uint8 images (N, 3,
    32, 32), labels)} in the order the reader returns them: class by class, files in name order."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for split, per_class in (("train", n_train_per_class), ("test", n_test_per_class)):
        labels = np.repeat(np.arange(len(CLASS_NAMES)), per_class)
        images = np.round(_class_images(labels, rng) * 255).astype(np.uint8)
        for index, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / CLASS_NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index % per_class:04d}.{fmt.lower()}").write_bytes(encode(image, fmt))
        written[split] = (images, labels)
    return root, written


def make_archive(folder, archive):
    """A .tar.gz (or .tar) of ``folder``'s train/ and test/, as the published archive holds them."""
    mode = "w:gz" if str(archive).endswith("gz") else "w"
    with tarfile.open(archive, mode) as tar:
        for split in ("train", "test"):
            if (Path(folder) / split).exists():
                tar.add(Path(folder) / split, arcname=split)
    return Path(archive)
