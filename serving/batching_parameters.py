"""`--batching_parameters_file`: the text-format `BatchingParameters` that stock TF Serving
reads (`tensorflow_serving/servables/tensorflow/session_bundle_config.proto`), for the
fields `keras-ar serve` implements:

    max_batch_size { value: 32 }          # most rows in one merged run (default 1000)
    batch_timeout_micros { value: 2000 }  # longest wait for a batch to fill (default 0)
    max_enqueued_batches { value: 10 }    # batches queued per queue before UNAVAILABLE
    num_batch_threads { value: 4 }        # threads running batches (default: the CPUs)
    allowed_batch_sizes: 8                # optional, increasing, the last = max_batch_size
    allowed_batch_sizes: 32

tensorflow-serving-api ships no Python module for that proto, so the message is declared
here with the same field names, numbers and wrapper types, and parsed by protobuf's own
text-format parser: a file stock TF Serving accepts with these fields parses the same way.
Any other field, or a value out of range, fails with the field, the value and the fix.
"""

import os
import pathlib

DEFAULTS = {"max_batch_size": 1000, "batch_timeout_micros": 0, "max_enqueued_batches": 10,
            "num_batch_threads": os.cpu_count() or 1}
#: (field, number) of the Int64Value fields, as numbered in session_bundle_config.proto
WRAPPED_FIELDS = (("max_batch_size", 1), ("batch_timeout_micros", 2),
                  ("max_enqueued_batches", 3), ("num_batch_threads", 4))
ALLOWED_BATCH_SIZES = ("allowed_batch_sizes", 6)
#: fields of stock TF Serving's message that keras-ar serve does not implement
UNSUPPORTED = ("thread_pool_name", "pad_variable_length_inputs",
               "enable_large_batch_splitting", "max_execution_batch_size")
_MESSAGE = []  # the generated message class, built once


class BatchingParameters:
    """The batching parameters of `keras-ar serve --enable_batching` (TF Serving's meaning):
    requests are merged into batches of at most `max_batch_size` rows; a batch runs when it
    is full or `batch_timeout_micros` after its first request arrived, on one of
    `num_batch_threads` threads; at most `max_enqueued_batches` batches wait per queue; a
    batch is padded up to the next of `allowed_batch_sizes` when given."""

    def __init__(self, max_batch_size=DEFAULTS["max_batch_size"],
                 batch_timeout_micros=DEFAULTS["batch_timeout_micros"],
                 max_enqueued_batches=DEFAULTS["max_enqueued_batches"],
                 num_batch_threads=DEFAULTS["num_batch_threads"], allowed_batch_sizes=(),
                 source="BatchingParameters"):
        values = {"max_batch_size": max_batch_size, "max_enqueued_batches": max_enqueued_batches,
                  "num_batch_threads": num_batch_threads}
        for field, value in values.items():
            _require(int(value) >= 1, source, field, value, "a positive integer")
        _require(int(batch_timeout_micros) >= 0, source, "batch_timeout_micros",
                 batch_timeout_micros, "a non-negative number of microseconds")
        self.max_batch_size = int(max_batch_size)
        self.batch_timeout_micros = int(batch_timeout_micros)
        self.max_enqueued_batches = int(max_enqueued_batches)
        self.num_batch_threads = int(num_batch_threads)
        self.allowed_batch_sizes = tuple(int(s) for s in allowed_batch_sizes)
        self._check_allowed(source)

    def _check_allowed(self, source):
        sizes = self.allowed_batch_sizes
        if not sizes:
            return
        _require(all(s >= 1 for s in sizes) and all(a < b for a, b in zip(sizes, sizes[1:])),
                 source, "allowed_batch_sizes", list(sizes),
                 "positive sizes in strictly increasing order")
        _require(sizes[-1] == self.max_batch_size, source, "allowed_batch_sizes", list(sizes),
                 f"a list whose last entry equals max_batch_size ({self.max_batch_size}); "
                 f"add {self.max_batch_size} at its end or change max_batch_size")

    @property
    def batch_timeout_s(self):
        return self.batch_timeout_micros / 1e6

    def padded_size(self, rows):
        """The batch size a merged batch of `rows` rows runs at: the smallest allowed size
        >= rows (rows itself when no sizes are listed)."""
        return next((s for s in self.allowed_batch_sizes if s >= rows), rows)

    def as_dict(self):
        return {"max_batch_size": self.max_batch_size,
                "batch_timeout_micros": self.batch_timeout_micros,
                "max_enqueued_batches": self.max_enqueued_batches,
                "num_batch_threads": self.num_batch_threads,
                "allowed_batch_sizes": list(self.allowed_batch_sizes)}

    @classmethod
    def from_text(cls, text, source="batching parameters"):
        """Parse text-format BatchingParameters; ValueError names the field, value and fix."""
        from google.protobuf import text_format

        message = _message_class()()
        try:
            text_format.Parse(text, message)
        except text_format.ParseError as error:
            raise ValueError(_parse_error_text(source, error)) from None
        kwargs = {name: getattr(message, name).value for name, _ in WRAPPED_FIELDS
                  if message.HasField(name)}
        return cls(**kwargs, allowed_batch_sizes=list(message.allowed_batch_sizes),
                   source=source)

    @classmethod
    def from_file(cls, path):
        path = pathlib.Path(path)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--batching_parameters_file {str(path)!r} cannot be read: "
                             f"{error}. Give the path of a text-format BatchingParameters "
                             f"file.") from None
        return cls.from_text(text, source=str(path))


def _require(ok, source, field, value, expected):
    if not ok:
        raise ValueError(f"{source}: `{field}` is {value!r}; expected {expected}. Fix that "
                         f"field in the batching parameters file.")


def _parse_error_text(source, error):
    text = str(error).rstrip(".")
    fields = [name for name, _ in WRAPPED_FIELDS] + [ALLOWED_BATCH_SIZES[0]]
    hint = (f"The file is a text-format BatchingParameters with the fields {fields}, each "
            f"scalar wrapped as `max_batch_size {{ value: 32 }}` and allowed_batch_sizes "
            f"repeated as `allowed_batch_sizes: 8`.")
    unsupported = [name for name in UNSUPPORTED if f'"{name}"' in text]
    if unsupported:
        hint = (f"`{unsupported[0]}` is a TF Serving field that keras-ar serve does not "
                f"implement; remove it. " + hint)
    return f"{source}: {text}. {hint}"


def _message_class():
    """The BatchingParameters message (package tensorflow.serving), declared with the
    proto's field numbers and google.protobuf wrapper types."""
    if _MESSAGE:
        return _MESSAGE[0]
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="keras_ar_serving/batching_parameters.proto", package="tensorflow.serving",
        syntax="proto3", dependency=[wrappers_pb2.DESCRIPTOR.name])
    message = file.message_type.add(name="BatchingParameters")
    for name, number in WRAPPED_FIELDS:
        message.field.add(name=name, number=number, type=field.TYPE_MESSAGE,
                          label=field.LABEL_OPTIONAL, type_name=".google.protobuf.Int64Value")
    message.field.add(name=ALLOWED_BATCH_SIZES[0], number=ALLOWED_BATCH_SIZES[1],
                      type=field.TYPE_INT64, label=field.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(file.SerializeToString())
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    _MESSAGE.append(message_factory.GetMessageClass(descriptor))
    return _MESSAGE[0]
