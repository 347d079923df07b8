"""Export to a TensorFlow SavedModel with every step-protocol signature.

Built with `keras.export.ExportArchive` (the Keras 3 way that works for subclassed models
with multi-input calls): one endpoint per signature with named `tf.TensorSpec`s, and
`generate_seeded` registered again as `serving_default`, so TF Serving clients that name no
signature get whole sequences from a seed. The SavedModel needs no keras_ar to load: its
graphs use TensorFlow ops only. The manifest goes to `assets/generation_spec.json` and beside
it at the top of the directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras

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
        write_archive(model, built, out, serving_default=default)
        (out / "assets").mkdir(exist_ok=True)
        manifest_lib.write_manifest(manifest, out / "assets")
        manifest_lib.write_manifest(manifest, out)
        for child in out.iterdir():
            shutil.move(str(child), tmp / child.name)
        out.rmdir()
    return manifest


def write_archive(model: AutoregressiveModel, built: dict[str, signatures_lib.Signature],
                  path: str | os.PathLike, serving_default: str | None = None) -> None:
    """Write the signatures `built` ({name: Signature}) of `model` as a SavedModel at `path`
    with ExportArchive; `serving_default` names the signature aliased as serving_default."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, signature in built.items():
        signature.concrete()  # traced once; ExportArchive reuses the traced tf.function
        archive.add_endpoint(name, signature.function)
    if serving_default is not None:
        archive.add_endpoint(SERVING_DEFAULT, built[serving_default].function)
    archive.write_out(str(path), verbose=False)
