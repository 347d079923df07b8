"""In-process TensorFlow: a SavedModel loaded with `tf.saved_model.load`, signatures called
by tensor name (no keras_ar model code)."""

import pathlib

from serving.backend import Backend
from serving.generation_spec import read_manifest


class SavedModelBackend(Backend):
    name = "savedmodel"

    def __init__(self, path):
        import tensorflow as tf

        self.path = pathlib.Path(path)
        if not (self.path / "saved_model.pb").is_file():
            raise FileNotFoundError(f"No SavedModel at {str(self.path)!r} "
                                    f"(saved_model.pb missing).")
        self._loaded = tf.saved_model.load(str(self.path))
        self._functions = dict(self._loaded.signatures)
        self._signatures = {}
        for name, fn in self._functions.items():
            inputs = fn.structured_input_signature[1]
            self._signatures[name] = {
                "inputs": {k: (tuple(s.shape.as_list()), s.dtype.as_numpy_dtype)
                           for k, s in inputs.items()},
                "outputs": {k: (tuple(s.shape.as_list()), s.dtype.as_numpy_dtype)
                            for k, s in fn.structured_outputs.items()}}
        try:
            self._manifest = read_manifest(self.path)
        except FileNotFoundError:
            self._manifest = None

    def _run(self, signature, feeds):
        import tensorflow as tf

        out = self._functions[signature](**{k: tf.constant(v) for k, v in feeds.items()})
        return {k: v.numpy() for k, v in out.items()}
