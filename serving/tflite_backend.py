"""On-device runtime: a TFLite flatbuffer with one signature runner per signature
(ai-edge-litert; XNNPACK on by default).

A dynamic-batch file (the default export) has its inputs resized to each call's batch. A
fixed-batch file (`export_tflite(batch_size=N)`: the manifest's `batch` is `{"dynamic":
false, "sizes": [N]}`, and the inputs' shape signatures start with N) cannot be resized (its
reshapes are compiled for N rows), so a call with another batch is, by `fixed_batch`:

* `"split"` (default): cut into chunks of the compiled batch, the last one padded with copies
  of its last row; outputs are joined and the padding dropped. Rows are independent in every
  signature (the step protocol's contract), so results equal a dynamic-batch file's.
* `"error"`: refused with a ValueError naming the received and the supported batch sizes.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from serving.backend import Backend
from serving.generation_spec import read_manifest

DEFAULT_FILE = "model.tflite"
FIXED_BATCH_MODES = ("split", "error")


class TFLiteBackend(Backend):
    name = "tflite"

    def __init__(self, path: str | os.PathLike, num_threads: int = 1,
                 fixed_batch: str = "split") -> None:
        from ai_edge_litert import interpreter as litert

        if fixed_batch not in FIXED_BATCH_MODES:
            raise ValueError(f"fixed_batch must be one of {FIXED_BATCH_MODES}; received "
                             f"{fixed_batch!r}.")
        self.fixed_batch = fixed_batch
        path = pathlib.Path(path)
        self.file = path / DEFAULT_FILE if path.is_dir() else path
        if not self.file.is_file():
            raise FileNotFoundError(f"No TFLite file at {str(self.file)!r}.")
        self._interpreter = litert.Interpreter(model_path=str(self.file),
                                               num_threads=int(num_threads))
        self._runners, self._signatures = {}, {}
        for name in self._interpreter.get_signature_list():
            runner = self._interpreter.get_signature_runner(name)
            self._runners[name] = runner
            self._signatures[name] = {
                "inputs": _specs(runner.get_input_details()),
                "outputs": _specs(runner.get_output_details())}
        try:
            self._manifest = read_manifest(self.file)
        except FileNotFoundError:
            self._manifest = None
        self.batch_sizes = _fixed_batch_sizes(self._manifest, self._signatures)

    def _run(self, signature, feeds):
        if self.batch_sizes is None:
            return self._call(signature, feeds)
        batch = _batch_of(signature, feeds)
        if batch in self.batch_sizes:
            return self._call(signature, feeds)
        if self.fixed_batch == "error" or batch == 0:
            raise ValueError(
                f"{self.file} was exported with a fixed batch of {self.batch_sizes} rows "
                f"(the manifest's batch.sizes); signature {signature!r} received a batch of "
                f"{batch}. Send {self.batch_sizes[0]} rows, use TFLiteBackend(..., "
                f"fixed_batch='split') to split and pad, or re-export with a dynamic batch "
                f"(export_tflite without batch_size).")
        return self._split(signature, feeds, batch)

    def _split(self, signature, feeds, batch):
        """Run `batch` rows as chunks of the compiled batch; the last chunk is padded with
        copies of its last row, and the padded rows' outputs are dropped."""
        size = max(self.batch_sizes)
        parts = []
        for start in range(0, batch, size):
            rows = min(size, batch - start)
            padded = min(s for s in self.batch_sizes if s >= rows)
            take = np.minimum(np.arange(start, start + padded), start + rows - 1)
            out = self._call(signature, {k: v[take] for k, v in feeds.items()})
            parts.append({k: v[:rows] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _call(self, signature, feeds):
        out = self._runners[signature](**feeds)
        return {k: v.copy() for k, v in out.items()}


def _specs(details):
    specs = {}
    for name, detail in details.items():
        shape = tuple(None if d < 0 else int(d) for d in detail["shape_signature"])
        specs[name] = (shape, detail["dtype"])
    return specs


def _fixed_batch_sizes(manifest, signatures):
    """The compiled batch sizes, or None for a dynamic batch: from the manifest's `batch`
    entry, else from the inputs' shape signatures (a fixed leading dimension on all)."""
    batch = (manifest or {}).get("batch")
    if batch is not None:
        return None if batch.get("dynamic", True) else sorted(int(s) for s in batch["sizes"])
    leading = {spec[0][0] for sig in signatures.values() for spec in sig["inputs"].values()
               if spec[0]}
    return None if len(leading) != 1 or None in leading else sorted(leading)


def _batch_of(signature, feeds):
    """The leading dimension every input shares (the contract: all inputs are batch-major)."""
    batches = {k: (v.shape[0] if v.ndim else None) for k, v in feeds.items()}
    if not batches:
        raise ValueError(f"Signature {signature!r} received no inputs.")
    if len(set(batches.values())) != 1 or None in batches.values():
        raise ValueError(f"Signature {signature!r}: every input must have the same leading "
                         f"(batch) dimension; received {batches}.")
    return next(iter(batches.values()))
