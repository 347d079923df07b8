"""In-process TensorFlow: a SavedModel loaded into its own graph and session, signatures
called by tensor name through session callables, as the server runs them (no keras_ar model
code; see `serving.signature_session`)."""

from __future__ import annotations

import os
import pathlib

from serving.backend import Backend
from serving.generation_spec import read_manifest
from serving.signature_session import SignatureSession


class SavedModelBackend(Backend):
    name = "savedmodel"

    def __init__(self, path: str | os.PathLike, intra_op_threads: int = 0,
                 inter_op_threads: int = 0) -> None:
        self.path = pathlib.Path(path)
        self._session = SignatureSession(self.path, intra_op_threads=intra_op_threads,
                                         inter_op_threads=inter_op_threads)
        self._signatures = self._session.specs
        try:
            self._manifest = read_manifest(self.path)
        except FileNotFoundError:
            self._manifest = None

    def _run(self, signature, feeds):
        return self._session.run(signature, feeds)

    def close(self) -> None:
        self._session.close()
