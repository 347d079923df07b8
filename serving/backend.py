"""The interface every generation backend implements (SavedModel, TFLite, ONNX, TF Serving)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from keras_ar import contract

#: One signature's tensors: {tensor name: (shape with None for dynamic dims, numpy dtype)}.
TensorSpecs = dict[str, tuple[tuple[int | None, ...], Any]]
#: A backend's signatures: {name: {"inputs": TensorSpecs, "outputs": TensorSpecs}}.
SignatureSpecs = dict[str, dict[str, TensorSpecs]]


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
    def signatures(self) -> SignatureSpecs:
        return self._signatures

    def manifest(self) -> dict[str, Any] | None:
        """The artifact's generation_spec.json as a dict, or None when not available."""
        return self._manifest

    def has(self, signature: str) -> bool:
        return signature in self._signatures

    def run(self, signature: str, feeds: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
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
        check_feed_shapes(self.name, signature, inputs, cast)
        return self._run(signature, cast)

    def _run(self, signature, feeds):
        raise NotImplementedError

    def close(self) -> None:
        pass


def check_feed_shapes(backend_name: str, signature: str, inputs: TensorSpecs,
                      feeds: Mapping[str, np.ndarray]) -> None:
    """Raise ValueError naming the tensor, its shape and the expected one, before the
    runtime sees a feed whose rank or fixed dimensions differ from the signature's (e.g. a
    state from another model), or `sample_chunk` feeds that disagree in batch or K."""
    for name, array in feeds.items():
        expected = inputs[name][0]
        if expected is None:
            continue
        if len(expected) != array.ndim or any(  # the batch axis is each backend's concern
                e is not None and e != a for e, a in zip(expected[1:], array.shape[1:])):
            text = "[" + ", ".join("?" if e is None else str(e) for e in expected) + "]"
            raise ValueError(f"{backend_name} {signature!r}: input `{name}` has shape "
                             f"{list(array.shape)}; the artifact expects {text}. Was the "
                             f"state or input made for another model?")
    if signature == contract.SAMPLE_CHUNK:
        errors = contract.chunk_feed_errors({k: v.shape for k, v in feeds.items()})
        if errors:
            raise ValueError(f"{backend_name} {signature!r}: " + " ".join(errors))


BACKENDS = ("savedmodel", "tflite", "onnx", "tfserving")


def infer_backend(model: str) -> str:
    """The backend an artifact path or URL needs (ValueError naming what was found)."""
    import pathlib as _pathlib

    if model.startswith(("http://", "https://", "grpc://")):
        return "tfserving"
    path = _pathlib.Path(model)
    if path.suffix == ".tflite" and path.is_file():
        return "tflite"
    kind = contract.artifact_kind(path) if path.is_dir() else None
    if kind is not None:
        return kind
    if not path.exists():
        raise ValueError(f"{model!r} does not exist (expected an exported artifact "
                         f"directory, a .tflite file or a TF Serving URL).")
    raise ValueError(f"{model!r} holds no saved_model.pb, model.tflite or *.onnx; "
                     f"name the backend ({', '.join(BACKENDS)}) or pass an export directory.")


def make_backend(kind: str | None, model: str | os.PathLike,
                 manifest: str | os.PathLike | dict[str, Any] | None = None,
                 retry_deadline_s: float = 30.0) -> Backend:
    """The backend of `kind` (one of BACKENDS; None: inferred from `model`) on `model`, an
    artifact path or a TF Serving URL (`manifest`: where its generation_spec.json lies;
    `retry_deadline_s`: how long a TF Serving backend retries an unreachable server)."""
    kind = kind or infer_backend(str(model))
    if kind not in BACKENDS:
        raise ValueError(f"Unknown backend {kind!r}; expected one of {', '.join(BACKENDS)}.")
    model = str(model)
    if kind == "savedmodel":
        from serving.saved_model_backend import SavedModelBackend
        return SavedModelBackend(model)
    if kind == "tflite":
        from serving.tflite_backend import TFLiteBackend
        return TFLiteBackend(model)
    if kind == "onnx":
        from serving.onnx_backend import OnnxBackend
        return OnnxBackend(model)
    from serving.tf_serving_backend import TFServingBackend
    return TFServingBackend(model, manifest=manifest, retry_deadline_s=retry_deadline_s)
