"""What the readers of CIFAR-10's pickles, idx files and class folders share: a file they cannot read stops the run
naming it, and a data set already decoded in this process (the tests, train then eval) is not decoded again."""
from contextlib import contextmanager

from common.errors import FileProblem

_decoded = {}


@contextmanager
def reading(path):
    """Turn an OSError while reading ``path`` into the FileProblem that names it and the fix."""
    try:
        yield
    except OSError as err:
        raise FileProblem(f"cannot read {path} ({err.strerror}); fix its permissions", "data_dir") from None


def stamps(paths):
    """Each file's name, size and modification time: replacing a file changes them."""
    return tuple((path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in paths)


def decode_once(key, decode):
    """``decode()``, or what it returned for ``key`` earlier in this process. The tensors are shared between the
    callers, who wrap them in their own ImageData and never modify them in place."""
    if key not in _decoded:
        _decoded[key] = decode()
    return _decoded[key]
