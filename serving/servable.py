"""One loaded model version: its SignatureDefs and a thread-safe `predict` by tensor name.

The SavedModel is loaded into its own graph and session (`SignatureSession`) and run only
through its signatures, by input/output tensor names, as TF Serving runs it: no Python code
from the model's package is imported and nothing from a request is ever deserialised as code.
"""

import pathlib

import numpy as np

from serving.errors import ServingError
from serving.limits import ServerLimits
from serving.signature_session import INTERNAL_SIGNATURES, SignatureSession
from serving.tflite_session import TFLITE_FILE, TFLiteSession

DEFAULT_SIGNATURE = "serving_default"
# whole-sequence loops (serving_default is `generate_seeded`): cancelled at the deadline
LOOP_SIGNATURES = ("generate", "generate_seeded", DEFAULT_SIGNATURE)
WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


class TensorInfo:
    """An input or output of a signature: name, numpy dtype, shape (None = any)."""

    def __init__(self, key, dtype, shape):
        self.key, self.dtype, self.shape = key, np.dtype(dtype), shape

    def check(self, array, what):
        if array.dtype != self.dtype:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"{what} `{self.key}` expects dtype {self.dtype.name}; received "
                f"{array.dtype.name}.")
        if self.shape is None:
            return
        ok = len(array.shape) == len(self.shape) and all(
            e is None or e == a for e, a in zip(self.shape, array.shape))
        if not ok:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"{what} `{self.key}` expects shape {_shape_text(self.shape)}; received "
                f"{list(array.shape)}.")


def _shape_text(shape):
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _tensor_info(key, proto):
    import tensorflow as tf

    dtype = tf.as_dtype(proto.dtype)
    np_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    shape = None
    if not proto.tensor_shape.unknown_rank:
        shape = [None if d.size < 0 else int(d.size) for d in proto.tensor_shape.dim]
    return TensorInfo(key, np_dtype, shape)


def read_signature_defs(path):
    """`{name: SignatureDef}` from `path/saved_model.pb` (serving tag set)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((pathlib.Path(path) / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return {k: v for k, v in meta_graph.signature_def.items()
                    if k not in INTERNAL_SIGNATURES}
    raise ServingError("NOT_FOUND", f"No MetaGraph with the 'serve' tag in {path}.")


class Servable:
    """A SavedModel version under `path`, loaded and ready to answer predict requests.

    With `prefer_tflite` and a `model.tflite` in the version directory, the TFLite model is
    run instead (tensorflow_model_server's `--prefer_tflite_model`; `tflite_session`).
    With a `batcher` (`serving.batch_scheduler.BatchScheduler`), requests of the signatures
    in `batched` are merged with concurrent ones (`batchable`)."""

    def __init__(self, name, version, path, intra_op_threads=0, inter_op_threads=0,
                 prefer_tflite=False, tflite_interpreters=1, limits=None, batcher=None):
        self.name, self.version, self.path = name, int(version), pathlib.Path(path)
        self.batcher = batcher
        self.limits = (limits or ServerLimits()).for_model(_manifest(self.path))
        # unloaded versions are closed by garbage collection, once no request holds them
        if prefer_tflite and (self.path / TFLITE_FILE).is_file():
            self._session = TFLiteSession(self.path, tflite_interpreters)
            self.signature_defs = self._session.signature_defs
            self.runtime = "tflite"
        else:
            self.signature_defs = read_signature_defs(self.path)  # NOT_FOUND without "serve"
            self._session = SignatureSession(self.path, intra_op_threads=intra_op_threads,
                                             inter_op_threads=inter_op_threads)
            self.runtime = "tensorflow"
        self.inputs = {k: {n: _tensor_info(n, t) for n, t in s.inputs.items()}
                       for k, s in self.signature_defs.items()}
        self.outputs = {k: {n: _tensor_info(n, t) for n, t in s.outputs.items()}
                        for k, s in self.signature_defs.items()}
        self.batched = sorted(k for k in self.signature_defs
                              if batchable(k, self.inputs[k], self.outputs[k]))

    def signature(self, signature_name):
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise ServingError(
                "FAILED_PRECONDITION",
                f"Serving signature key \"{name}\" not found; model {self.name!r} version "
                f"{self.version} has {sorted(self.signature_defs)}.")
        return name

    def predict(self, signature_name, feeds, output_filter=(), timeout_s=None):
        """Run signature `signature_name` on `feeds` ({input name: numpy array}) ->
        ({output name: numpy array}, resolved signature name). `timeout_s` (the client's
        deadline) cancels a whole-sequence `generate`/`generate_seeded` run when it passes
        (DEADLINE_EXCEEDED); the short step signatures run to the end, merged with
        concurrent requests when batching is on."""
        name = self.signature(signature_name)
        specs = self.inputs[name]
        missing, extra = sorted(set(specs) - set(feeds)), sorted(set(feeds) - set(specs))
        if missing or extra:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Signature \"{name}\" takes inputs {sorted(specs)}: missing {missing}, "
                f"unexpected {extra}.")
        self.limits.check_source(name, feeds)  # the model's own terms before the shape's
        for key, array in feeds.items():
            specs[key].check(array, "Input")
        unknown = sorted(set(output_filter) - set(self.outputs[name]))
        if unknown:
            raise ServingError("INVALID_ARGUMENT",
                               f"output_filter names unknown outputs {unknown}; signature "
                               f"\"{name}\" has {sorted(self.outputs[name])}.")
        outputs = {k: v for k, v in self.outputs[name].items()
                   if not output_filter or k in output_filter}
        self.limits.check_feeds(name, specs, outputs, feeds)
        timeout_s = timeout_s if name in LOOP_SIGNATURES else None
        if self.batcher is None or name not in self.batched:
            return self._run(name, feeds, output_filter, timeout_s), name
        key = (id(self), name, tuple(sorted(output_filter)),
               tuple((k, a.dtype.str, a.shape[1:]) for k, a in sorted(feeds.items())))
        return self.batcher.submit(
            key, (self.name, self.version, name),
            lambda merged: self._run(name, merged, output_filter, None), feeds), name

    def _run(self, name, feeds, output_filter, timeout_s):
        """The session's run of `name`, its errors as ServingErrors."""
        import tensorflow as tf

        try:
            return self._session.run(name, feeds, output_filter, timeout_s=timeout_s)
        except tf.errors.DeadlineExceededError:
            raise ServingError("DEADLINE_EXCEEDED", f"Signature \"{name}\" was cancelled at "
                               f"the client's deadline ({timeout_s:.3g} s); allow a longer "
                               "deadline or ask for fewer num_steps.") from None
        except (tf.errors.InvalidArgumentError, ValueError, TypeError, RuntimeError) as error:
            raise ServingError("INVALID_ARGUMENT", _first_line(error)) from None
        except tf.errors.OpError as error:
            raise ServingError("INTERNAL", _first_line(error)) from None

    def warm_up(self):
        """Replay `assets.extra/tf_serving_warmup_requests` (PredictionLog TFRecords);
        returns the number replayed. A failing record fails the load, as in TF Serving."""
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_log_pb2

        path = self.path / WARMUP_FILE
        if not path.exists():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.WhichOneof("log_type") != "predict_log":
                raise ServingError("UNIMPLEMENTED",
                                   f"Warm-up supports predict_log records only; {path} has "
                                   f"{log.WhichOneof('log_type')}.")
            request = log.predict_log.request
            feeds = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            self.predict(request.model_spec.signature_name, feeds)
            count += 1
        return count


def batchable(signature, inputs, outputs):
    """Whether requests of `signature` may be merged along the batch axis: every input and
    output ({name: TensorInfo}) has a known rank >= 1 and a free leading (batch) dimension
    (rank-0 tensors are per-request scalars; a fixed batch cannot grow), and it is not a
    whole-sequence loop (`generate`, `generate_seeded`, `serving_default`: their output
    length follows per-request values and they run to the client's deadline)."""
    if signature in LOOP_SIGNATURES:
        return False
    infos = list(inputs.values()) + list(outputs.values())
    return bool(inputs) and all(i.shape is not None and len(i.shape) >= 1
                                and i.shape[0] is None for i in infos)


def _manifest(path):
    """The version's generation_spec.json (None when it has none or it does not parse)."""
    from serving.generation_spec import read_manifest

    try:
        return read_manifest(path)
    except (OSError, ValueError):
        return None


def _first_line(error):
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
