"""Tiny exported artifacts for the serving tests, built with the project's exporters."""

import pathlib

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


def export_saved_model(model, path):
    """A SavedModel with every signature (serving_default = generate_seeded) + manifest."""
    from export.saved_model import export_saved_model as export

    export(model, path)
    return pathlib.Path(path)


def export_tflite(model, path, signatures=LOOP_SIGNATURES):
    from export.tflite import export_tflite as export

    export(model, path, signatures=signatures)
    return pathlib.Path(path)


def export_onnx(model, path, signatures=LOOP_SIGNATURES):
    from export.onnx import export_onnx as export

    export(model, path, signatures=signatures)
    return pathlib.Path(path)
