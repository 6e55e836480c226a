"""Atomic file writes: a reader (or a crash) never sees a half-written file, and a failed write
(disk full, no permission) leaves the previous file as it was and raises FileProblem naming the path."""
import json
import os
import tempfile
from pathlib import Path

import torch

from common.errors import FileProblem


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path, write, location=None):
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        # mkstemp creates 0600 files; give the finished file the permissions an ordinary write would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        # torch.save reports a failed write (disk full) as a RuntimeError from its zip writer
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise FileProblem(f"cannot write {path} ({reason}); free some space or fix its folder's permissions; "
                          f"the previous file, if any, is unchanged", location) from err
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data, location=None):
    _atomic_write(path, lambda handle: handle.write(data), location)


def atomic_write_text(path, text, location=None):
    atomic_write_bytes(path, text.encode("utf-8"), location)


def atomic_write_json(path, obj, location=None):
    """Strict JSON: a NaN or infinity in ``obj`` is a bug (ValueError), never written as ``NaN``/``Infinity``."""
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n", location)


def atomic_torch_save(obj, path, location=None):
    _atomic_write(path, lambda handle: torch.save(obj, handle), location)


def ensure_writable_dir(path, location=None):
    """Create ``path`` if needed and check it is writable; ``location`` names the setting that chose it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FileProblem(f"cannot create output directory {path}: {err.strerror}", location) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise FileProblem(f"output directory {path} is not writable", location)
    return path
