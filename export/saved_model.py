"""Export to a TensorFlow SavedModel with every step-protocol signature.

Written by `tf.saved_model.save` of a `tf.Module` that holds the variables the signatures read, one
SavedModel signature per endpoint (named `tf.TensorSpec`s, the same traced functions the
TFLite and ONNX exports convert) and `generate_seeded` registered again as
`serving_default`, so TF Serving clients that name no signature get whole sequences from a
seed. The endpoints are signatures only (what TF Serving and
`tf.saved_model.load(path).signatures[name]` call), not functions of the object graph:
saving a `tf.function` as an attribute traces it again under the save's variable policy,
the whole model a second time (`keras.export.ExportArchive` does that). The SavedModel
needs no keras_ar to load: its graphs use TensorFlow ops only. The manifest goes to
`assets/generation_spec.json` and beside it at the top of the directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from export import manifest as manifest_lib
from export import signatures as signatures_lib
from export.atomic import atomic_directory
from keras_ar import contract

if TYPE_CHECKING:
    from keras_ar.models import AutoregressiveModel

SERVING_DEFAULT = "serving_default"


def export_saved_model(model: AutoregressiveModel, path: str | os.PathLike,
                       signatures: Sequence[str] = signatures_lib.ALL_SIGNATURES,
                       stop_token: int | None = None, training: dict[str, Any] | None = None,
                       overwrite: bool = False) -> dict[str, Any]:
    """Write the SavedModel at `path` (atomically); return the manifest dict.

    `signatures`: names to export (default all); `stop_token`: ends `generate` rows at it;
    `training`: {"data_fingerprint": ..., "metrics": {...}} recorded in the manifest.
    """
    built = signatures_lib.build_signatures(model, signatures, stop_token=stop_token)
    manifest = manifest_lib.build_manifest(model, built, "savedmodel", stop_token=stop_token,
                                           training=training)
    default = (contract.GENERATE_SEEDED if contract.GENERATE_SEEDED in built
               else next(iter(built)))
    manifest["serving_default"] = default
    with atomic_directory(path, overwrite) as tmp:
        out = tmp / "savedmodel"
        write_archive(built, out, serving_default=default)
        (out / "assets").mkdir(exist_ok=True)
        manifest_lib.write_manifest(manifest, out / "assets")
        manifest_lib.write_manifest(manifest, out)
        for child in out.iterdir():
            shutil.move(str(child), tmp / child.name)
        out.rmdir()
    return manifest


def write_archive(built: dict[str, signatures_lib.Signature], path: str | os.PathLike,
                  serving_default: str | None = None) -> None:
    """Write the signatures `built` ({name: Signature}, from `build_signatures`) as a
    SavedModel at `path` with the variables they read (each signature traced once, here or
    earlier, and reused); `serving_default` names the signature aliased as serving_default.
    Variables are the only resources saved: a signature that reads a lookup table (none of
    keras_ar's models do) would fail to save, naming the untracked resource."""
    signatures = {name: signature.concrete() for name, signature in built.items()}
    read, order = {}, {}  # the variables the signatures read (TensorFlow's, not Keras's)
    for function in signatures.values():
        read.update((id(v), v) for v in function.variables)
        for captured in function.captured_inputs:
            order.setdefault(id(captured), len(order))
    # in the order the traces captured them (`variables` is a set): numbered alike every run
    variables = sorted(read.values(), key=lambda v: order.get(id(v.handle), len(order)))
    root = tf.Module()
    root.signature_variables = variables
    if serving_default is not None:
        signatures[SERVING_DEFAULT] = signatures[serving_default]
    tf.saved_model.save(root, str(path), signatures=signatures)
