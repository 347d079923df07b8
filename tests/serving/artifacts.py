"""Tiny exported artifacts for the serving tests, built with the project's exporters.

`built_once` builds an artifact once per pytest run: every test file and every xdist worker
of the run reads the same directory (the exporters write atomically; an flock serialises
the builders, so a second worker waits for the first one's build instead of repeating it).
"""

import fcntl
import os
import pathlib
import shutil

from keras_ar import contract

TINY_WAVENET = dict(num_classes=16, dilations=[1, 2, 4], residual_channels=8,
                    skip_channels=8)
LOOP_SIGNATURES = (contract.INIT_STATE, contract.PREFILL, contract.SAMPLE_STEP,
                   contract.SAMPLE_CHUNK, contract.GENERATE)


def tiny_wavenet(seed=0, **overrides):
    import keras

    from keras_ar.models import WaveNet

    keras.utils.set_random_seed(seed)
    kwargs = dict(TINY_WAVENET)
    kwargs.update(overrides)
    return WaveNet(**kwargs)


def export_saved_model(model, path, signatures=None):
    """A SavedModel with `signatures` (default every one; serving_default = generate_seeded
    where exported) + manifest."""
    from export.saved_model import export_saved_model as export

    export(model, path, **({} if signatures is None else {"signatures": signatures}))
    return pathlib.Path(path)


def export_tflite(model, path, signatures=LOOP_SIGNATURES, saved_model_dir=None):
    """`saved_model_dir`: convert from this SavedModel of `model` (no temporary one)."""
    from export.tflite import export_tflite as export

    export(model, path, signatures=signatures, saved_model_dir=saved_model_dir)
    return pathlib.Path(path)


def export_onnx(model, path, signatures=LOOP_SIGNATURES, check_atol=1e-5):
    """`check_atol=None`: no numeric check in the export (for tests that compare samples)."""
    from export.onnx import export_onnx as export

    export(model, path, signatures=signatures, check_atol=check_atol)
    return pathlib.Path(path)


def shared_root(tmp_path_factory):
    """The folder this pytest run's test files share: under xdist the parent of the workers'
    base temps (unique to the run), else the run's own base temp."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    root.mkdir(exist_ok=True)
    return root


def built_once(tmp_path_factory, name, build):
    """`<shared root>/<name>`, written by `build(path)` unless an earlier caller in this run
    has built it. `name` must say everything the artifact depends on."""
    root = shared_root(tmp_path_factory)
    path = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not path.exists():
            try:
                build(path)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
    return path
