"""Export to TFLite: one flatbuffer with every signature (builtin ops only).

    <path>/model.tflite            float32, signatures init_state, prefill, step, sample_step,
                                   log_prob, generate (`generate_seeded` needs stateless RNG
                                   ops, which are not builtins: SavedModel only)
    <path>/model_int8.tflite       dynamic-range int8 weights (quantize=("int8",))
    <path>/model_float16.tflite    float16 weights (quantize=("float16",))
    <path>/generation_spec.json    the manifest, also embedded as the metadata buffer
                                   `generation_spec` of every .tflite file

Quantised files are checked before they are kept: `log_prob` of the quantised file and of the
float32 file on held-out data (`eval_data`, or samples of the model when none is given) give
NLL = -mean(log_prob); a mode whose NLL grows by more than `max_nll_increase` (relative,
default 2%) is refused with `QuantizationError` naming both NLLs and the bound. Sizes and
NLLs go to the manifest's `quantization` entry.

Conversion goes through a temporary SavedModel and `TFLiteConverter.from_saved_model(dir,
signature_keys=[...])`, which keeps the signature names. The batch is dynamic: the LiteRT
signature runner resizes inputs (checked by the parity gate); `batch_size=N` fixes it instead
and the manifest records the size.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from export import manifest as manifest_lib
from export import saved_model
from export import signatures as signatures_lib
from export.atomic import atomic_directory
from keras_ar import contract

if TYPE_CHECKING:
    from keras_ar.models import AutoregressiveModel

FILES = {"float32": "model.tflite", "int8": "model_int8.tflite",
         "float16": "model_float16.tflite"}
TFLITE_SIGNATURES = contract.ENDPOINTS
MAX_NLL_INCREASE = 0.02


class QuantizationError(ValueError):
    """A quantised model scores held-out data worse than the configured bound allows."""


def export_tflite(model: AutoregressiveModel, path: str | os.PathLike,
                  quantize: Sequence[str] = (), signatures: Sequence[str] = TFLITE_SIGNATURES,
                  batch_size: int | None = None, stop_token: int | None = None,
                  training: dict[str, Any] | None = None, overwrite: bool = False,
                  saved_model_dir: str | os.PathLike | None = None,
                  eval_data: np.ndarray | dict[str, np.ndarray] | None = None,
                  max_nll_increase: float = MAX_NLL_INCREASE) -> dict[str, Any]:
    """Write the TFLite directory `path` (atomically); return the manifest dict.

    `saved_model_dir`: convert from this SavedModel of `model` (written by
    `export_saved_model`, dynamic batch) instead of writing a temporary one.
    `quantize`: modes among "int8" (dynamic range) and "float16", each checked on
    `eval_data` (held-out inputs of `log_prob`: an `x` array or a dict with `x` and the
    conditions) against `max_nll_increase` (relative NLL growth over float32).
    """
    _check_arguments(quantize, signatures)
    built = signatures_lib.build_signatures(model, signatures, batch=batch_size,
                                            stop_token=stop_token)
    sizes = [int(batch_size)] if batch_size else None
    with atomic_directory(path, overwrite) as tmp, tempfile.TemporaryDirectory() as scratch:
        saved = saved_model_dir
        if saved is None or batch_size:
            saved = pathlib.Path(scratch) / "savedmodel"
            saved_model.write_archive(built, saved)
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
        if quantize:
            feeds = held_out_feeds(model, eval_data)
            reference = nll(tmp / files["float32"], feeds)
            quantization["float32"]["nll"] = reference
            source = "eval_data" if eval_data is not None else "model samples"
            for mode in quantize:
                quantization[mode].update(
                    check_quantized(tmp / files[mode], feeds, reference, max_nll_increase,
                                    mode),
                    nll_float32=reference, max_nll_increase=float(max_nll_increase),
                    eval_rows=int(len(feeds[contract.X])), eval_source=source)
        manifest["quantization"] = quantization
        manifest_lib.write_manifest(manifest, tmp)
    return manifest


def _check_arguments(quantize, signatures):
    unknown = sorted(set(quantize) - {"int8", "float16"})
    if unknown:
        raise ValueError(f"Unknown quantize modes {unknown}; choose from ['int8', 'float16'].")
    if quantize and contract.LOG_PROB not in signatures:
        raise ValueError(f"Quantisation is checked with the `log_prob` signature; add it to "
                         f"`signatures` (received {list(signatures)}).")
    bad = sorted(set(signatures) - set(TFLITE_SIGNATURES))
    if bad:
        raise ValueError(f"Signatures {bad} cannot be exported to TFLite; choose from "
                         f"{list(TFLITE_SIGNATURES)}.")


def held_out_feeds(model, eval_data, rows=8):
    """`log_prob` feeds {name: ndarray} from `eval_data` (array `x` or dict; without
    `lengths`, every window counts whole); without data, `rows` samples of the model itself
    (a weak stand-in: pass real held-out data)."""
    import numpy as np

    if eval_data is None:
        from export import verify

        return verify.example_feeds(model, [contract.LOG_PROB], batch=rows, seed=7)[
            contract.LOG_PROB]
    data = dict(eval_data) if isinstance(eval_data, dict) else {contract.X: eval_data}
    spec = model.x_spec()
    data[contract.X] = np.asarray(data[contract.X]).astype(spec.dtype.as_numpy_dtype)
    if getattr(model, "scores_lengths", False) and contract.LENGTHS not in data:
        x = data[contract.X]
        data[contract.LENGTHS] = np.full([x.shape[0]], x.shape[1], np.int32)
    return {k: np.asarray(v) for k, v in data.items()}


def nll(file, feeds, chunk=64):
    """-mean(log_prob) of the TFLite `file` on `feeds` (run `chunk` rows at a time)."""
    import numpy as np

    from export import verify

    run = verify.tflite_runner(file)
    total, rows = 0.0, len(feeds[contract.X])
    for start in range(0, rows, chunk):
        out = run(contract.LOG_PROB, {k: v[start:start + chunk] for k, v in feeds.items()})
        total += float(np.sum(out[contract.LOG_PROB_OUTPUT].astype(np.float64)))
    return -total / rows


def check_quantized(file, feeds, reference, bound, mode):
    """NLL of the quantised `file` vs the float32 `reference`; raise QuantizationError when
    it grows by more than `bound` (relative); return the figures."""
    value = nll(file, feeds)
    change = (value - reference) / max(abs(reference), 1e-12)
    figures = {"nll": value, "nll_change": change}
    if not change <= bound:  # NaN refuses too
        raise QuantizationError(
            f"{mode} quantisation refused: NLL on {len(feeds[contract.X])} held-out rows "
            f"grows from {reference:.6g} (float32) to {value:.6g} ({mode}), a relative change "
            f"of {change:+.3%}, above the bound max_nll_increase={bound:.3%}. Export without "
            f"{mode!r}, or raise the bound if that loss is acceptable.")
    return figures


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
