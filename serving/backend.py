"""The interface every generation backend implements (SavedModel, TFLite, ONNX, TF Serving)."""

import numpy as np


class Backend:
    """Runs exported signatures by tensor name on numpy feeds.

    Subclasses set `self._signatures = {name: {"inputs": {tensor: (shape, dtype)},
    "outputs": {...}}}` (shape: tuple with None for dynamic dims; dtype: numpy dtype) and
    implement `_run(signature, feeds) -> {output: array}`.
    """

    name = "backend"
    _signatures = None
    _manifest = None

    @property
    def signatures(self):
        return self._signatures

    def manifest(self):
        """The artifact's generation_spec.json as a dict, or None when not available."""
        return self._manifest

    def has(self, signature):
        return signature in self._signatures

    def run(self, signature, feeds):
        """Run `signature` on `feeds` ({input: array}); cast feeds to the declared dtypes."""
        if signature not in self._signatures:
            raise ValueError(f"The {self.name} artifact has no signature {signature!r}; it "
                             f"has {sorted(self._signatures)}.")
        inputs = self._signatures[signature]["inputs"]
        missing = sorted(set(inputs) - set(feeds))
        extra = sorted(set(feeds) - set(inputs))
        if missing or extra:
            raise ValueError(f"Signature {signature!r} takes {sorted(inputs)}; missing "
                             f"{missing}, unexpected {extra}.")
        cast = {k: np.ascontiguousarray(np.asarray(v).astype(inputs[k][1], copy=False))
                for k, v in feeds.items()}
        return self._run(signature, cast)

    def _run(self, signature, feeds):
        raise NotImplementedError

    def close(self):
        pass
