"""Runners: `run(signature, feeds: {name: ndarray}) -> {name: ndarray}` on the Keras model
(eager, through the exports' own signature bodies) and on each exported target, as the
parity gate (`export.verify`), the tests and the benchmarks drive them."""

import pathlib

import numpy as np


def as_numpy(tree):
    """{name: ndarray} of a {name: tensor or array} mapping."""
    return {k: np.asarray(v) for k, v in tree.items()}


def keras_runner(model, stop_token=None):
    """Eager Keras (runtime checks on) through the same signature bodies the exports use
    (`stop_token`: the one the artifacts were exported with; it ends `sample_chunk` and
    `generate` rows)."""
    from export import signatures as signatures_lib

    built = signatures_lib.build_signatures(model, signatures_lib.ALL_SIGNATURES,
                                            stop_token=stop_token)

    def run(name, feeds):
        signature = built[name]
        return as_numpy(signature.function.python_function(
            *[feeds[s.name] for s in signature.inputs]))

    return run


def saved_model_runner(path):
    """run(signature, feeds) on a SavedModel as the server runs it: serving's
    `SignatureSession` (its own graph and session, signatures called by tensor name)."""
    from serving.signature_session import SignatureSession

    session = SignatureSession(path)

    def run(name, feeds):
        return session.run(name, {k: np.asarray(v) for k, v in feeds.items()})

    run.session = session
    return run


def tflite_runner(path, file="model.tflite"):
    """run(signature, feeds) on a TFLite file through serving's `TFLiteBackend`, which also
    runs a fixed-batch export (`batch_size=N`) on any batch by splitting and padding."""
    from serving.tflite_backend import TFLiteBackend

    path = pathlib.Path(path)
    backend = TFLiteBackend(path / file if path.is_dir() else path)

    def run(name, feeds):
        return backend.run(name, feeds)

    return run


def onnx_runner(path):
    from export import onnx as onnx_export

    sessions = {}

    def run(name, feeds):
        if name not in sessions:
            sessions[name] = onnx_export.session(pathlib.Path(path) / f"{name}.onnx")
        sess = sessions[name]
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(None, feeds)))

    return run


RUNNERS = {"savedmodel": saved_model_runner, "tflite": tflite_runner, "onnx": onnx_runner}


def runners_for(directory, targets=None):
    """{target: run} for the artifacts `export_all` wrote under `directory`."""
    directory = pathlib.Path(directory)
    found = {t: RUNNERS[t](directory / t) for t in RUNNERS
             if (directory / t).is_dir() and (targets is None or t in targets)}
    if not found:
        raise FileNotFoundError(f"No exported targets under {str(directory)!r} (expected "
                                f"sub-directories among {sorted(RUNNERS)}).")
    return found
