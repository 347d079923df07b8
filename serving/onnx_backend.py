"""ONNX Runtime: one `<signature>.onnx` file per signature in a directory."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from serving.backend import Backend
from serving.generation_spec import read_manifest

_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
          "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
          "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(float16)": np.float16}


class OnnxBackend(Backend):
    name = "onnx"

    def __init__(self, path: str | os.PathLike, num_threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = pathlib.Path(path)
        files = sorted(self.path.glob("*.onnx"))
        if not files:
            raise FileNotFoundError(f"No .onnx files in {str(self.path)!r}.")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = int(num_threads)
        self._sessions, self._signatures = {}, {}
        for file in files:
            session = ort.InferenceSession(str(file), options,
                                           providers=["CPUExecutionProvider"])
            self._sessions[file.stem] = session
            self._signatures[file.stem] = {
                "inputs": {i.name: _spec(i) for i in session.get_inputs()},
                "outputs": {o.name: _spec(o) for o in session.get_outputs()}}
        try:
            self._manifest = read_manifest(self.path)
        except FileNotFoundError:
            self._manifest = None

    def _run(self, signature, feeds):
        session = self._sessions[signature]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds)))


def _spec(value):
    shape = tuple(d if isinstance(d, int) else None for d in value.shape)
    if value.type not in _TYPES:
        raise ValueError(f"Unsupported ONNX tensor type {value.type} for {value.name!r}.")
    return shape, _TYPES[value.type]
