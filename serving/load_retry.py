"""Versions that failed to load: their error, and when the model manager tries them again.

A failed version is retried on later polls with back-off: the wait after the n-th failure is
`base_s * 2**(n-1)`, at most `max_s`. A version whose files changed since its last attempt
(a copy completing, a corrupt file replaced) is retried at the next poll whatever the wait.
It is retried until it loads, its folder is removed or it is no longer aspired.
"""

import os
import threading
import time

DEFAULT_MAX_WAIT_S = 60.0


def fingerprint(path):
    """What changes when a version directory's files change: (relative path, size, mtime)
    of every file below `path`, and the directory's own inode (a folder replaced)."""
    try:
        root = os.stat(path)
    except OSError:
        return None
    entries = []
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            try:
                stat = os.stat(full)
            except OSError:  # removed while we walk: the next poll sees the change
                continue
            entries.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return (root.st_dev, root.st_ino, tuple(sorted(entries)))


def directory_identity(path):
    """(device, inode) of a version directory: changes when the folder is replaced."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


class Failure:
    def __init__(self):
        self.attempts, self.code, self.message = 0, "UNKNOWN", ""
        self.fingerprint, self.retry_at = None, 0.0


class LoadFailures:
    """{(model name, version, base path): Failure}; thread-safe for status readers."""

    def __init__(self, base_s=1.0, max_s=DEFAULT_MAX_WAIT_S):
        self.base_s, self.max_s = float(base_s), float(max_s)
        self._failures = {}
        self._lock = threading.Lock()

    def due(self, key, path):
        """Whether version `key` (directory `path`) should be loaded at this poll."""
        with self._lock:
            failure = self._failures.get(key)
        if failure is None:
            return True
        return time.monotonic() >= failure.retry_at or fingerprint(path) != failure.fingerprint

    def record(self, key, path, error):
        """Note a failed attempt: its error, and the wait before the next one."""
        with self._lock:
            failure = self._failures.setdefault(key, Failure())
            failure.attempts += 1
            failure.code = getattr(error, "code", None) or "UNKNOWN"
            failure.message = _first_line(error)
            failure.fingerprint = fingerprint(path)
            wait = min(self.base_s * 2 ** (failure.attempts - 1), max(self.max_s, self.base_s))
            failure.retry_at = time.monotonic() + wait
            return failure.attempts, wait

    def clear(self, key):
        with self._lock:
            self._failures.pop(key, None)

    def keep(self, predicate):
        """Forget every failure whose key fails `predicate` (folder gone, not aspired)."""
        with self._lock:
            self._failures = {k: v for k, v in self._failures.items() if predicate(k)}

    def of_model(self, name):
        """{version: Failure} of model `name`."""
        with self._lock:
            return {k[1]: v for k, v in self._failures.items() if k[0] == name}


def _first_line(error):
    text = getattr(error, "message", None) or str(error)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
