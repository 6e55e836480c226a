"""Data sets stored as class folders (ImageFolder's ``train/<class>/*`` and ``test/<class>/*``, labels in sorted
class order), read from the folder or a .tar/.tar.gz of it. JPEGs are decoded in chunks by torchvision's
``decode_jpeg`` (4x PIL's speed, the same pixels); the result is cached by the source's fingerprint, beside it or,
where its folder is read-only (shared data), in the user's cache.
"""
import dataclasses
import hashlib
import io
import os
import tarfile
import warnings
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from tqdm.auto import tqdm

from common.errors import FileProblem
from common.io import atomic_torch_save
from data.dataset import Dataset, ImageData
from data.files import decode_once, reading

SPLITS = ("train", "test")
TENSORS = ("train_x", "train_y", "test_x", "test_y")
# torchvision's IMG_EXTENSIONS: ImageFolder counts these files as images and ignores every other file.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
JPEG_MAGIC = b"\xff\xd8"
DECODE_CHUNK = 2000  # JPEGs per decode_jpeg call: one call per chunk, and a progress bar that moves
CACHE_FORMAT = "sparsity-robustness/class-folder-cache"
CACHE_VERSION = 1
CACHE_SUFFIX = ".decoded.pt"


@dataclasses.dataclass(frozen=True)
class ClassFolders:
    """Where one class-folder data set's files may be and what they must hold."""

    name: str  # also the file names it is looked for under --data-dir: <name>/, <name>.tar.gz, <name>.tar
    title: str
    class_names: tuple  # = the class folders' names, in sorted order (ImageFolder's labels)
    input_shape: tuple  # (channels, height, width); channels 1 (grey) or 3 (RGB)

    def __post_init__(self):
        if list(self.class_names) != sorted(self.class_names):
            raise ValueError(f"{self.name}: class folders label in sorted order; list the classes sorted")
        if self.input_shape[0] not in (1, 3):
            raise ValueError(f"{self.name}: images have 1 (grey) or 3 (RGB) channels, not {self.input_shape[0]}")

    def read(self, data_dir, download=True):
        """The data set under ``data_dir`` (a folder, or the archive itself); class folders are never downloaded."""
        source = self.locate(Path(data_dir))
        fingerprint = _fingerprint(source)
        data = decode_once((self, str(source.resolve()), fingerprint), lambda: self._load(source, fingerprint))
        return dataclasses.replace(data, classes=list(self.class_names))

    def locate(self, data_dir):
        """The archive or folder holding train/ and test/, from --data-dir; FileProblem when there is none."""
        if data_dir.is_file():
            if not data_dir.name.endswith(ARCHIVE_SUFFIXES):
                raise FileProblem(f"{data_dir} is not a .tar or .tar.gz archive; give --data-dir the {self.title} "
                                  f"archive or a folder with train/<class>/ and test/<class>/", "data_dir")
            return data_dir
        if not data_dir.is_dir():
            raise FileProblem(f"{self.title} is not at {data_dir} (no such file or folder); {self._how()}",
                              "data_dir")
        folders = (data_dir, data_dir / self.name)
        for folder in folders:
            if any((folder / split).is_dir() for split in SPLITS):
                return folder
        for archive in (folder / f"{self.name}{suffix}" for folder in folders for suffix in ARCHIVE_SUFFIXES):
            if archive.is_file():
                return archive
        raise FileProblem(f"{data_dir} has no train/ or test/ folder (nor {self.name}/ or {self.name}.tar.gz); "
                          f"{self._how()}", "data_dir")

    def _how(self):
        return (f"give --data-dir the {self.title} archive ({self.name}.tar.gz) or a folder with train/<class>/ "
                f"and test/<class>/ for the classes {' '.join(self.class_names)}")

    def cache_paths(self, source):
        """Where a decoded copy of ``source`` may be: beside it, and in the user's cache (named by the source's
        absolute path, so that two copies of a data set do not overwrite each other's)."""
        source = source.resolve()
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        tag = hashlib.sha256(str(source).encode()).hexdigest()[:16]
        return (source.with_name(source.name + CACHE_SUFFIX),
                base / "sparsity-robustness" / "class-folders" / f"{self.name}-{tag}{CACHE_SUFFIX}")

    def _load(self, source, fingerprint):
        """The data set from a cache file of ``source`` as it is now, else decoded and cached."""
        header = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "dataset": self.name, "fingerprint": fingerprint,
                  "classes": list(self.class_names), "input_shape": list(self.input_shape)}
        beside, user = self.cache_paths(source)
        for path in (beside, user):
            try:
                content = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # a missing, damaged or foreign cache is only a cache: decode again and replace it
                continue
            if isinstance(content, dict) and all(content.get(key) == value for key, value in header.items()):
                tensors = [content.get(name) for name in TENSORS]
                if self._valid(*tensors):
                    return ImageData(*tensors, [])
        data = self._decode(source)
        content = {**header, **{name: getattr(data, name) for name in TENSORS}}
        # a read-only data folder (shared data) is cached in the user's cache only
        for path in ([beside] if _writable(beside.parent) else []) + [user]:
            try:
                atomic_torch_save(content, path)
                return data
            except FileProblem:
                continue
        warnings.warn(f"could not cache the decoded {self.title} in {beside.parent} or {user.parent}: the next run "
                      f"decodes it again")
        return data

    def _valid(self, train_x, train_y, test_x, test_y):
        return all(isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dtype == torch.uint8
                   and y.dtype == torch.int64 and tuple(x.shape[1:]) == tuple(self.input_shape)
                   and y.shape == (len(x),) for x, y in ((train_x, train_y), (test_x, test_y)))

    def _decode(self, source):
        tree = _archive_tree(source) if source.is_file() else _folder_tree(source)
        self._check(source, tree)
        tensors = []
        for split in SPLITS:
            # ImageFolder's order: class by class, files in name order
            labels, names, blobs = zip(*((label, f"{source}/{split}/{name}/{file}", blob)
                                         for label, name in enumerate(self.class_names)
                                         for file, blob in sorted(tree[split][name].items())))
            tensors += [_decode_images(blobs, names, self.input_shape, self.title, split),
                        torch.tensor(labels, dtype=torch.int64)]
        return ImageData(*tensors, list(self.class_names))

    def _check(self, source, tree):
        """FileProblem naming the first split or class folder that does not match the registered classes."""
        for split in SPLITS:
            if split not in tree:
                raise FileProblem(f"{source} has no {split}/ folder; {self._how()}", "data_dir")
        for split in SPLITS:
            extra = sorted(set(tree[split]) - set(self.class_names))
            if extra:
                raise FileProblem(f"{source}/{split}/{extra[0]} is not a class of {self.title}; its classes are "
                                  f"{' '.join(self.class_names)}: remove or rename that folder", "data_dir")
            for name in self.class_names:
                if name not in tree[split]:
                    raise FileProblem(f"{source}/{split}/ has no {name}/ folder: {self.title} needs one folder "
                                      f"per class ({' '.join(self.class_names)})", "data_dir")
                if not tree[split][name]:
                    raise FileProblem(f"{source}/{split}/{name}/ holds no images ({', '.join(IMAGE_EXTENSIONS)})",
                                      "data_dir")


def _writable(folder):
    """Whether the cache may be written into ``folder``: it grants write access (to root too, who may write
    anywhere: a folder whose mode grants nobody write access is read-only by intent, as shared data is)."""
    try:
        return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
    except OSError:
        return False


def _is_image_name(name):
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _fingerprint(source):
    """The archive's SHA-256 (0.1 s for 20 MB; a copy keeps it), or each file's size and time under train/, test/."""
    if source.is_file():
        with reading(source), open(source, "rb") as handle:
            return f"sha256:{hashlib.file_digest(handle, 'sha256').hexdigest()}"
    digest = hashlib.sha256()
    for split in SPLITS:
        for root, _, names in sorted(os.walk(source / split)):
            for name in sorted(names):
                stat = os.stat(os.path.join(root, name))
                digest.update(f"{os.path.join(root, name)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return f"stat:{digest.hexdigest()}"


def _archive_tree(archive):
    """split -> class -> image file name -> bytes, in one pass; one enclosing folder (``cifar10-jpeg/train/...``) is
    accepted, absolute and ``..`` paths never read."""
    tree = {}
    try:
        with tarfile.open(archive, "r:*") as tar, \
                tqdm(desc=f"reading {archive.name}", unit="file", leave=False) as bar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if PurePosixPath(member.name).is_absolute() or ".." in parts:
                    continue
                if len(parts) > 1 and parts[0] not in SPLITS and parts[1] in SPLITS:
                    parts = parts[1:]  # one enclosing folder
                if not parts or parts[0] not in SPLITS:
                    continue
                if member.isdir() and len(parts) == 1:
                    tree.setdefault(parts[0], {})
                elif member.isdir() and len(parts) == 2:
                    tree.setdefault(parts[0], {}).setdefault(parts[1], {})
                elif member.isfile() and len(parts) == 3:
                    images = tree.setdefault(parts[0], {}).setdefault(parts[1], {})  # an archive need not list folders
                    if _is_image_name(parts[2]):
                        images[parts[2]] = tar.extractfile(member).read()
                    bar.update()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        reason = getattr(err, "strerror", None) or err
        raise FileProblem(f"cannot read the archive {archive} ({reason}); replace it with an intact copy",
                          "data_dir") from None
    return tree


def _folder_tree(folder):
    """split -> class -> image file name -> bytes under ``folder``'s train/ and test/ (hidden ones skipped)."""
    tree = {}
    for split in SPLITS:
        if not (folder / split).is_dir():
            continue
        tree[split] = {entry.name: {} for entry in sorted((folder / split).iterdir())
                       if entry.is_dir() and not entry.name.startswith(".")}
        for name, images in tree[split].items():
            for path in sorted((folder / split / name).iterdir()):
                if path.is_file() and _is_image_name(path.name):
                    with reading(path):
                        images[path.name] = path.read_bytes()
    return tree


def _decode_images(blobs, names, shape, title, split):
    """Encoded images -> uint8 (N, C, H, W); FileProblem naming the first file that is not an image of ``shape``."""
    import torchvision.io  # imported here: its import takes seconds that a bad option should not wait for

    mode = torchvision.io.ImageReadMode.RGB if shape[0] == 3 else torchvision.io.ImageReadMode.GRAY
    out = torch.empty((len(blobs), *shape), dtype=torch.uint8)
    jpegs = [i for i, blob in enumerate(blobs) if blob.startswith(JPEG_MAGIC)]
    others = [i for i, blob in enumerate(blobs) if not blob.startswith(JPEG_MAGIC)]
    with tqdm(total=len(blobs), desc=f"decoding {title} {split}", unit="img", leave=False) as bar:
        for start in range(0, len(jpegs), DECODE_CHUNK):
            chunk = jpegs[start:start + DECODE_CHUNK]
            data = [torch.frombuffer(bytearray(blobs[i]), dtype=torch.uint8) for i in chunk]
            try:
                decoded = torchvision.io.decode_jpeg(data, mode=mode)
            except RuntimeError:  # one bad JPEG fails the whole chunk: decode them one by one to name it
                decoded = []
                for one, i in zip(data, chunk):
                    try:
                        decoded.append(torchvision.io.decode_jpeg(one, mode=mode))
                    except RuntimeError as err:
                        raise _undecodable(names[i], str(err).rsplit(", ", 1)[-1]) from None
            for i, image in zip(chunk, decoded):
                out[i] = _checked(image, names[i], shape, title)
            bar.update(len(chunk))
        for i in others:
            out[i] = _checked(_decode_with_pil(blobs[i], names[i], shape[0]), names[i], shape, title)
            bar.update()
    return out


def _decode_with_pil(blob, name, channels):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(blob)) as image:
            array = torch.from_numpy(np.array(image.convert("RGB" if channels == 3 else "L")))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise _undecodable(name, str(err).split(" <")[0] or type(err).__name__) from None
    return array.permute(2, 0, 1) if array.ndim == 3 else array[None]


def _undecodable(name, reason):
    return FileProblem(f"{name} is not a readable image ({reason}); replace or delete it", "data_dir")


def _checked(image, name, shape, title):
    if tuple(image.shape[1:]) != tuple(shape[1:]):
        raise FileProblem(f"{name} is {image.shape[2]}x{image.shape[1]} pixels, {title}'s images are "
                          f"{shape[2]}x{shape[1]}; replace or delete it", "data_dir")
    return image


def class_folder_dataset(name, title, class_names=None, input_shape=None, like=None, **record):
    """A registry record for a class-folder data set: ``like``'s fields (e.g. the same images re-encoded) but for
    ``record``'s."""
    folders = ClassFolders(name, title, tuple(class_names or like.class_names), tuple(input_shape or like.input_shape))
    fields = {"name": name, "title": title, "class_names": folders.class_names, "input_shape": folders.input_shape,
              "source": f"train/<class>/ and test/<class>/ image folders, or a .tar/.tar.gz of them: --data-dir is "
                        f"the archive, the folder, or a folder holding {name}/ or {name}.tar.gz",
              "read": folders.read, **record}
    return dataclasses.replace(like, **fields) if like else Dataset(**fields)
