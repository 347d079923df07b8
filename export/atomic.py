"""Atomic directory writes: build in a sibling temp dir, rename into place when complete.

A crash or exception while writing leaves no directory at the final path (only a hidden
`.<name>.tmp-*` sibling, removed on failure when possible), so readers such as TF Serving,
which watch a model base path, never see a half-written version. Replacing an existing
directory swaps the two in one step (Linux `renameat2(RENAME_EXCHANGE)`), so the path never
disappears in between: a server polling it never sees the version gone and unloads it.
"""

import contextlib
import ctypes
import errno
import os
import pathlib
import shutil
import sys
import tempfile


def check_target(path, overwrite):
    """Raise FileExistsError if `path` exists and `overwrite` is false."""
    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"Output {str(path)!r} already exists; pass overwrite=True (CLI: --overwrite) to "
            "replace it, or choose another path.")


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yield a temp directory; on success it replaces `path` (rename), on error it is removed."""
    path = pathlib.Path(path)
    check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            _replace_directory(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_directory(tmp, path):
    """Put directory `tmp` at `path` (an existing directory, then deleted)."""
    if _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the old directory
        return
    old = path.parent / f".{path.name}.old-{os.getpid()}"  # two renames: a short gap
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a, b):
    """Swap paths `a` and `b` atomically; False where the platform cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # old kernel, file system
        return False
    raise OSError(code, f"Cannot swap {a} into {b}: {os.strerror(code)}")
