"""`generation_spec.json`: what a runtime needs to drive an exported model, without Keras.

Written beside every artifact (`<savedmodel>/generation_spec.json`, `<tflite dir>/...`,
`<onnx dir>/...`) and embedded in it: SavedModel `assets/generation_spec.json`, ONNX
`metadata_props["generation_spec"]` of every `.onnx` file, TFLite metadata buffer
`generation_spec` of every `.tflite` file. `read_manifest(path)` (`keras_ar.contract`'s, also
exported here) reads it with the standard library only (serving/ uses it).

Format (schema_version = `keras_ar.contract.MANIFEST_SCHEMA_VERSION`, JSON object):

    schema_version   int
    artifact         "savedmodel" | "tflite" | "onnx"
    model            {"family": class name, "module": ..., "config": get_config()}
    x                {"event_shape": [...], "dtype": "int32", "start_id": int}
    state            {key: {"shape": [null, ...], "dtype": ...}}   (input state_<key>,
                     output new_state_<key>; always holds "index": int32[B])
    noise            {"per_step": [noise_size, ...], "dtype": "float32"}: uniforms in [0, 1);
                     sample_step takes noise[B, *per_step], generate noise[B, T, *per_step]
    conditions       {"whole": {name: spec}, "per_step": {name: spec}}: init_state, prefill,
                     log_prob and generate take the whole ones; step and sample_step the
                     per-step ones (e.g. local_condition [B, D], the frame at index // hop)
    signatures       {name: {"inputs": {tensor: spec}, "outputs": {tensor: spec}}}, where
                     spec = {"shape": [null | int, ...], "dtype": numpy dtype name}; null
                     dims are dynamic (the leading one is the batch)
    batch            {"dynamic": bool, "sizes": [int, ...]}: sizes the artifact accepts when
                     not dynamic (TFLite may be fixed-batch)
    decoding         {"output": "decoded", "token_output": "x", "lengths_output": "lengths",
                     "mu_law": bool | null, "num_classes": int | null,
                     "bit_depth": int | null, "stop_token": int | null,
                     "samples_stop": bool (rows end at a sampled flag: sample_step's `stop`),
                     + the model's `metadata`: e.g. "sample_rate" (audio), "speakers" /
                     "class_names" (global condition ids -> names), "vocabulary" (a list of
                     tokens, id = index) or "text": "bytes" (ids 0..255 are UTF-8 bytes);
                     sequence-to-sequence sources: "source_vocabulary" (tokens, id =
                     index) or "source_text": "bytes" (`serving.source_input`)}
    files            artifact files relative to the manifest (e.g. {"float32": "model.tflite"}
                     or {"step": "step.onnx"}); {} for a SavedModel
    quantization     {mode: {"file": ..., "bytes": int}} (TFLite only); quantised modes
                     add "nll", "nll_float32", "nll_change" (relative), "max_nll_increase",
                     "eval_rows", "eval_source" (the held-out check, see export.tflite)
    training         {"data_fingerprint": str | null, "metrics": {...}}
    versions         {"keras_ar": ..., "tensorflow": ..., "keras": ..., ...}

Signature names: init_state, prefill, step, sample_step, log_prob, generate, and
(SavedModel only) generate_seeded, which is also serving_default. `generate` and
`generate_seeded` take `prompt` [B, P, *event] (x's dtype, laid out like the output `x`) and
`prompt_length` int32[B]: row i's first prompt_length[i] positions are the prompt's
(teacher-forced), the rest sampled; send P = 0 or zeros for no prompt.
"""

import json
import math
import os
import pathlib

from keras_ar import contract
from keras_ar.contract import read_manifest  # noqa: F401  (owned by the contract: TF-free)

EMBEDDED_KEY = "generation_spec"
ARTIFACTS = ("savedmodel", "tflite", "onnx")


def write_manifest(manifest, directory):
    """Write `generation_spec.json` into `directory`; return its path."""
    path = pathlib.Path(directory) / contract.MANIFEST_FILENAME
    path.write_text(dumps(manifest))
    return path


def dumps(manifest):
    return json.dumps(manifest, indent=2, sort_keys=True, default=_json_default)


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def check_feeds(manifest, signature, feeds):
    """Check names, ranks, fixed dims and dtype kinds of `feeds` (numpy-like) against the
    manifest; raise ValueError naming what was received and what is expected."""
    spec = manifest["signatures"].get(signature)
    if spec is None:
        raise ValueError(f"Unknown signature {signature!r}; this artifact has "
                         f"{sorted(manifest['signatures'])}.")
    expected = spec["inputs"]
    missing, extra = sorted(set(expected) - set(feeds)), sorted(set(feeds) - set(expected))
    if missing or extra:
        raise ValueError(f"Signature {signature!r} takes inputs {sorted(expected)}; missing "
                         f"{missing}, unexpected {extra}.")
    for name, tensor_spec in expected.items():
        shape = list(getattr(feeds[name], "shape", ()))
        want = tensor_spec["shape"]
        if len(shape) != len(want) or any(w is not None and w != s
                                          for w, s in zip(want, shape)):
            raise ValueError(
                f"Input {name!r} of signature {signature!r} must have shape "
                f"{_shape_text(want)} ({tensor_spec['dtype']}); received {tuple(shape)}.")
    return True


def _shape_text(shape):
    return "[" + ", ".join("B" if i == 0 and d is None else ("?" if d is None else str(d))
                           for i, d in enumerate(shape)) + "]"


# ----------------------------------------------------------------------- building (TF side)
def tensor_spec_json(spec):
    return {"shape": spec.shape.as_list(), "dtype": spec.dtype.name}


def build_manifest(model, signatures, artifact, batch_sizes=None, files=None,
                   stop_token=None, training=None, quantization=None):
    """The manifest dict for `model` exported with `signatures` ({name: Signature})."""
    if artifact not in ARTIFACTS:
        raise ValueError(f"`artifact` must be one of {ARTIFACTS}; received {artifact!r}.")
    conditions = {
        "whole": {k: tensor_spec_json(v) for k, v in model.condition_specs(False).items()},
        "per_step": {k: tensor_spec_json(v) for k, v in model.condition_specs(True).items()}}
    num_classes = getattr(model, "num_classes", None)
    return {
        "schema_version": contract.MANIFEST_SCHEMA_VERSION,
        "artifact": artifact,
        "model": {"family": type(model).__name__, "module": type(model).__module__,
                  "config": model.get_config()},
        "x": {"event_shape": list(model.event_shape), "dtype": _dtype_name(model.x_dtype),
              "start_id": int(model.start_id)},
        "state": {k: tensor_spec_json(v) for k, v in sorted(model.state_spec(None).items())},
        "noise": {"per_step": list(model.noise_spec), "dtype": "float32"},
        "conditions": conditions,
        "signatures": {name: {"inputs": {s.name: tensor_spec_json(s) for s in sig.inputs},
                              "outputs": {k: tensor_spec_json(v)
                                          for k, v in sig.output_specs().items()}}
                       for name, sig in signatures.items()},
        "batch": {"dynamic": not batch_sizes, "sizes": list(batch_sizes or [])},
        "decoding": {
            "output": "decoded", "token_output": contract.X,
            "lengths_output": contract.LENGTHS, "mu_law": getattr(model, "mu_law", None),
            "num_classes": num_classes,
            "bit_depth": int(math.ceil(math.log2(num_classes))) if num_classes else None,
            "stop_token": stop_token, "samples_stop": bool(model.samples_stop),
            **getattr(model, "metadata", {})},
        "files": dict(files or {}),
        "quantization": dict(quantization or {}),
        "training": dict(training or {"data_fingerprint": None, "metrics": {}}),
        "versions": versions(),
    }


def _dtype_name(dtype):
    return getattr(dtype, "name", str(dtype))


def versions():
    """Versions of the export stack (importlib.metadata; missing packages omitted)."""
    from importlib import metadata

    out = {}
    for package in ("keras-ar", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime",
                    "ai-edge-litert", "tensorflow-serving-api", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    out["python"] = ".".join(map(str, __import__("sys").version_info[:3]))
    out["platform"] = os.uname().sysname if hasattr(os, "uname") else "unknown"
    return out
