"""Atomic directory writes: build in a sibling temp dir, rename into place when complete.

A crash or exception while writing leaves no directory at the final path (only a hidden
`.<name>.tmp-*` sibling, removed on failure when possible), so readers such as TF Serving,
which watch a model base path, never see a half-written version.
"""

import contextlib
import os
import pathlib
import shutil
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
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
