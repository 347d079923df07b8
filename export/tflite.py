"""Export to TFLite: one flatbuffer with every signature (builtin ops only).

    <path>/model.tflite            float32, signatures init_state, prefill, step, sample_step,
                                   log_prob, generate (`generate_seeded` needs stateless RNG
                                   ops, which are not builtins: SavedModel only)
    <path>/model_int8.tflite       dynamic-range int8 weights (quantize=("int8",))
    <path>/model_float16.tflite    float16 weights (quantize=("float16",))
    <path>/generation_spec.json    the manifest, also embedded as the metadata buffer
                                   `generation_spec` of every .tflite file

Conversion goes through a temporary SavedModel and `TFLiteConverter.from_saved_model(dir,
signature_keys=[...])`, which keeps the signature names. The batch is dynamic: the LiteRT
signature runner resizes inputs (checked by the parity gate); `batch_size=N` fixes it instead
and the manifest records the size.
"""

import pathlib
import tempfile

import tensorflow as tf

from export import manifest as manifest_lib
from export import saved_model
from export import signatures as signatures_lib
from export.atomic import atomic_directory
from keras_ar import contract

FILES = {"float32": "model.tflite", "int8": "model_int8.tflite",
         "float16": "model_float16.tflite"}
TFLITE_SIGNATURES = contract.ENDPOINTS


def export_tflite(model, path, quantize=(), signatures=TFLITE_SIGNATURES, batch_size=None,
                  stop_token=None, training=None, overwrite=False, saved_model_dir=None):
    """Write the TFLite directory `path` (atomically); return the manifest dict.

    `saved_model_dir`: convert from this SavedModel of `model` (written by
    `export_saved_model`, dynamic batch) instead of writing a temporary one.
    """
    unknown = sorted(set(quantize) - {"int8", "float16"})
    if unknown:
        raise ValueError(f"Unknown quantize modes {unknown}; choose from ['int8', 'float16'].")
    bad = sorted(set(signatures) - set(TFLITE_SIGNATURES))
    if bad:
        raise ValueError(f"Signatures {bad} cannot be exported to TFLite; choose from "
                         f"{list(TFLITE_SIGNATURES)}.")
    built = signatures_lib.build_signatures(model, signatures, batch=batch_size,
                                            stop_token=stop_token)
    sizes = [int(batch_size)] if batch_size else None
    with atomic_directory(path, overwrite) as tmp, tempfile.TemporaryDirectory() as scratch:
        saved = saved_model_dir
        if saved is None or batch_size:
            saved = pathlib.Path(scratch) / "savedmodel"
            saved_model.write_archive(model, built, saved)
        files, quantization = {}, {}
        for mode in ("float32",) + tuple(quantize):
            files[mode] = FILES[mode]
        manifest = manifest_lib.build_manifest(
            model, built, "tflite", batch_sizes=sizes, files=files, stop_token=stop_token,
            training=training)
        for mode, name in files.items():
            flatbuffer = convert(saved, list(built), mode)
            flatbuffer = embed_metadata(flatbuffer, manifest_lib.dumps(manifest).encode())
            (tmp / name).write_bytes(flatbuffer)
            quantization[mode] = {"file": name, "bytes": len(flatbuffer)}
        manifest["quantization"] = quantization
        manifest_lib.write_manifest(manifest, tmp)
    return manifest


def convert(saved_model_dir, signature_keys, mode="float32"):
    """SavedModel -> TFLite flatbuffer bytes with builtin ops only."""
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=list(signature_keys))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode in ("int8", "float16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as error:  # the converter raises ConverterError with the op list
        raise RuntimeError(
            f"TFLite conversion ({mode}) of signatures {list(signature_keys)} failed: an op "
            f"outside the TFLite builtins reached an exported signature (see "
            f"shared/design/export-facts.md).\n{error}") from error


def embed_metadata(flatbuffer, data, name=manifest_lib.EMBEDDED_KEY):
    """Add `data` as the metadata buffer `name` of a TFLite flatbuffer; return new bytes."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = list(data)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(path, name=manifest_lib.EMBEDDED_KEY):
    """The metadata buffer `name` of a .tflite file as bytes (via LiteRT's schema, no TF)."""
    from ai_edge_litert import schema_py_generated as schema

    raw = pathlib.Path(path).read_bytes()
    model = schema.Model.GetRootAsModel(raw, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == name:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    raise KeyError(f"{path}: no metadata buffer {name!r}.")
