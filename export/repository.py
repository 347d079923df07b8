"""A TF Serving model repository: `<base>/<name>/<version>/` plus server configuration.

    <base>/models.config                   model_config_list, one entry per model directory,
                                           base_path /models/<name> (mount <base> at /models)
    <base>/batching_parameters.txt         server-side batching (every input is batch-major)
    <base>/<name>/<version>/saved_model.pb  export_saved_model output
    <base>/<name>/<version>/assets.extra/tf_serving_warmup_requests
                                           one PredictionLog per signature (TFRecord)
    <base>/<name>/<version>/model.tflite   with `tflite=True`: the same signatures (all but
                                           generate_seeded) for `--prefer_tflite_model`

Each version is written atomically (built in a hidden sibling, renamed to its integer name
when complete): TF Serving, which polls the base path and serves the highest version, never
sees a half-written one. Serve it with:

    docker run -p 8500:8500 -p 8501:8501 -v <base>:/models tensorflow/serving \\
        --model_config_file=/models/models.config --enable_batching \\
        --batching_parameters_file=/models/batching_parameters.txt

and add `--prefer_tflite_model=true` to run each version's `model.tflite` (TF Serving's
experimental flag; `keras-ar serve` has it too): the generation loops (`sample_chunk`,
`generate`) then run at TFLite's speed instead of the TensorFlow runtime's. Warm-up requests
cover the signatures both runtimes hold.
"""

import pathlib

from export.atomic import atomic_directory
from keras_ar import contract

WARMUP_FILE = "tf_serving_warmup_requests"
BATCHING = """max_batch_size { value: 64 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 4 }
"""


def next_version(model_dir):
    """The highest integer version folder under `model_dir` (complete or not) + 1."""
    return contract.next_version(model_dir)


def write_version(model, base, name, version=None, overwrite=False, tflite=False,
                  **export_kwargs):
    """Export `model` as version `version` (default: next) of `name` under `base`; write the
    warm-up requests, models.config and batching parameters (and `model.tflite` with
    `tflite=True`); return the version path."""
    import tempfile

    from export import saved_model
    from export.tflite import FILES, TFLITE_SIGNATURES, export_tflite

    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"Model name must be a plain directory name; received {name!r}.")
    model_dir = pathlib.Path(base) / name
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"TF Serving versions are positive integers; received {version}.")
    path = model_dir / str(version)
    with atomic_directory(path, overwrite) as tmp:
        manifest = saved_model.export_saved_model(model, tmp, overwrite=True, **export_kwargs)
        signatures = manifest["signatures"]
        if tflite:
            with tempfile.TemporaryDirectory() as scratch:
                lite = export_tflite(model, pathlib.Path(scratch) / "tflite",
                                     saved_model_dir=tmp, signatures=[
                                         s for s in signatures if s in TFLITE_SIGNATURES],
                                     stop_token=export_kwargs.get("stop_token"))
                (pathlib.Path(scratch) / "tflite" / FILES["float32"]).rename(
                    tmp / FILES["float32"])
            signatures = [s for s in signatures if s in lite["signatures"]]
        write_warmup(model, dict(manifest, signatures=signatures),
                     tmp / "assets.extra" / WARMUP_FILE, name)
    write_server_config(base)
    return path


def warmup_feeds(model, manifest, batch=1):
    """{signature: feeds} for every signature in the manifest (small, valid inputs)."""
    import numpy as np

    from export import verify

    feeds = verify.example_feeds(model, batch=batch, length=4)
    if contract.GENERATE_SEEDED in manifest["signatures"]:
        controls = {k: v for k, v in feeds[contract.GENERATE].items()
                    if k != contract.NOISE}
        feeds[contract.GENERATE_SEEDED] = {
            contract.SEED: np.zeros([batch], "int32"),
            "num_steps": np.full([batch], 4, "int32"), **controls}
    return {name: feeds[name] for name in manifest["signatures"] if name in feeds}


def write_warmup(model, manifest, path, model_name):
    """One PredictionLog (PredictRequest) per signature, as TF Serving replays at load."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, feeds in warmup_feeds(model, manifest).items():
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
                name=model_name, signature_name=signature))
            for key, value in feeds.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def write_server_config(base):
    """models.config for every model directory under `base`, and the batching file."""
    base = pathlib.Path(base)
    names = sorted(p.name for p in base.iterdir()
                   if p.is_dir() and not p.name.startswith(".")
                   and contract.versions(p, complete=False))
    entries = "".join(
        f'  config {{\n    name: "{n}"\n    base_path: "/models/{n}"\n'
        f'    model_platform: "tensorflow"\n  }}\n' for n in names)
    (base / "models.config").write_text(f"model_config_list {{\n{entries}}}\n")
    (base / "batching_parameters.txt").write_text(BATCHING)


def add_model_to_config(config_file, name, base_path):
    """Add (or update) model `name` at `base_path` in a ModelServerConfig text file, keeping
    every other entry; written atomically. Serve with `--model_config_file=<config_file>`."""
    import os

    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config_file = pathlib.Path(config_file)
    config = model_server_config_pb2.ModelServerConfig()
    if config_file.is_file():
        text_format.Parse(config_file.read_text(), config)
    entries = config.model_config_list.config
    entry = next((e for e in entries if e.name == name), None) or entries.add()
    entry.name, entry.base_path, entry.model_platform = name, str(base_path), "tensorflow"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = config_file.with_name(f".{config_file.name}.tmp-{os.getpid()}")
    tmp.write_text(text_format.MessageToString(config))
    os.replace(tmp, config_file)
