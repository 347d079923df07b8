"""A version's `model.tflite` run behind the TF Serving APIs, as tensorflow_model_server's
`--prefer_tflite_model` does: "load and use the TensorFlow Lite model from the `model.tflite`
file in the SavedModel directory instead of the TensorFlow model from `saved_model.pb`".

The SignatureDefs (GetModelMetadata, input checks) are built from the TFLite signatures, so
clients see the same names, dtypes and shapes. A TFLite interpreter is not thread-safe: the
session holds a pool of `num_interpreters` (tensorflow_model_server's
`--num_tflite_interpreters_per_pool`) and each request takes one from the pool.

For the step protocol's loops this is the fast path: a `sample_chunk` of K samples runs at the
TFLite loop's speed, where the TensorFlow runtime's while loop costs ~0.4 ms per step.
"""

import pathlib
import queue

import numpy as np

TFLITE_FILE = "model.tflite"
PREDICT_METHOD = "tensorflow/serving/predict"


class TFLiteSession:
    """`run(signature, feeds, output_keys)` on `<path>/model.tflite`; thread-safe."""

    def __init__(self, path, num_interpreters=1):
        from serving.tflite_backend import TFLiteBackend

        self.path = pathlib.Path(path)
        file = self.path / TFLITE_FILE
        if not file.is_file():
            raise FileNotFoundError(f"No {TFLITE_FILE} in {str(self.path)!r}.")
        if int(num_interpreters) < 1:
            raise ValueError(f"num_interpreters must be >= 1; received {num_interpreters}.")
        self._pool = queue.Queue()
        for _ in range(int(num_interpreters)):
            self._pool.put(TFLiteBackend(file))
        first = self._pool.queue[0]
        self.specs = first.signatures
        self.signature_defs = {name: _signature_def(spec) for name, spec in self.specs.items()}

    def run(self, signature, feeds, output_keys=None, timeout_s=None):
        """As `SignatureSession.run`; `timeout_s` is not enforced (the TFLite interpreter
        cannot be interrupted): `--max_num_steps` bounds a TFLite `generate` instead."""
        backend = self._pool.get()
        try:
            out = backend.run(signature, feeds)
        finally:
            self._pool.put(backend)
        keys = sorted(output_keys or out)
        return {k: out[k] for k in keys}

    def close(self):
        while not self._pool.empty():
            self._pool.get().close()


def _signature_def(spec):
    """A SignatureDef proto from a TFLite signature's {"inputs"/"outputs": {name: (shape,
    dtype)}} (-1 for dynamic dimensions, as in SavedModel signatures)."""
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    definition = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
    for side in ("inputs", "outputs"):
        for name, (shape, dtype) in spec[side].items():
            info = getattr(definition, side)[name]
            info.name = f"{name}:0"
            info.dtype = tf.as_dtype(np.dtype(dtype)).as_datatype_enum
            if shape is None:
                info.tensor_shape.unknown_rank = True
                continue
            for size in shape:
                info.tensor_shape.dim.add(size=-1 if size is None else int(size))
    return definition
