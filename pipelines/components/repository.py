"""A TF Serving model base path: integer version directories, pushed atomically.

    <base_path>/<version>/saved_model.pb, variables/, assets/ ...   (what TF Serving loads)
    <base_path>/<version>/keras_ar_push.json   {"model_fingerprint", "run_id", "source"}

A push copies the SavedModel to `<base_path>/.tmp-<version>-<pid>` and renames it to
`<base_path>/<version>` (a rename is atomic on one file system), so TF Serving never sees a
half-written version. Version = the highest integer folder + 1, complete or not (a folder
without `saved_model.pb`, e.g. a copy someone else is making, is taken, never reused).
"""

import json
import os
import pathlib
import shutil

from keras_ar import contract

PUSH_INFO = "keras_ar_push.json"


def versions(base_path):
    """Sorted integer versions present under `base_path` (complete ones only)."""
    return contract.versions(base_path)


def push_info(base_path, version):
    path = pathlib.Path(base_path) / str(version) / PUSH_INFO
    return json.loads(path.read_text()) if path.is_file() else {}


def find_version(base_path, model_fingerprint):
    """The version pushed from `model_fingerprint`, or None."""
    for version in reversed(versions(base_path)):
        if push_info(base_path, version).get("model_fingerprint") == model_fingerprint:
            return version
    return None


def baseline(base_path, exclude_fingerprint=None):
    """(version, path) of the latest pushed model not built from `exclude_fingerprint`."""
    for version in reversed(versions(base_path)):
        info = push_info(base_path, version)
        if exclude_fingerprint is None or info.get("model_fingerprint") != exclude_fingerprint:
            return version, pathlib.Path(base_path) / str(version)
    return None, None


def push(saved_model_dir, base_path, info, prepare=None):
    """Copy `saved_model_dir` into `base_path` as a new version, atomically; return it.
    `prepare(folder)` adds files (e.g. warm-up requests) to the copy before it appears."""
    saved_model_dir = pathlib.Path(saved_model_dir)
    if not (saved_model_dir / contract.SAVED_MODEL_FILE).is_file():
        raise FileNotFoundError(f"No SavedModel to push at {saved_model_dir} "
                                "(saved_model.pb missing).")
    base = pathlib.Path(base_path)
    base.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        version = contract.next_version(base)
        tmp = base / f".tmp-{version}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(saved_model_dir, tmp)
            (tmp / PUSH_INFO).write_text(json.dumps(dict(info, version=version), indent=2)
                                         + "\n")
            if prepare is not None:
                prepare(tmp)
            os.rename(tmp, base / str(version))  # fails if another pusher took the number
            return version
        except OSError:
            if not (base / str(version)).exists():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    raise RuntimeError(f"Could not claim a version under {base} in 100 attempts (other "
                       "pushers keep taking the next number).")
