"""Request limits checked before anything is allocated or run (TF-free).

`ServerLimits` holds `keras-ar serve`'s flags; `ModelLimits` resolves them for one model
version with its manifest (the time axis is at most the model's own length where it has
one: a transformer's `max_length`, an image model's H * W positions). `check_feeds` judges
decoded inputs (batch, sizes, values: `keras_ar.contract`'s checks) and the outputs the
request would produce, so a huge `batch_template` or `num_steps` is refused up front.
Size refusals are PAYLOAD_TOO_LARGE (HTTP 413, gRPC RESOURCE_EXHAUSTED); value refusals,
and time axes or steps past the model's own length, INVALID_ARGUMENT (HTTP 400). A
sequence-to-sequence model's source (`local_condition`) is checked as the model checks it
(`keras_ar.contract.source_errors`) before its shape, so a long, short, empty or
out-of-vocabulary source is named as such.
"""

import math

import numpy as np

from keras_ar import contract
from serving.errors import ServingError
from serving.source_input import SourceSpec

DEFAULT_MAX_BATCH_SIZE = 256
DEFAULT_MAX_REQUEST_BYTES = 64 << 20  # a REST body or gRPC message
DEFAULT_MAX_TENSOR_ELEMENTS = 1 << 20  # 4 MB of float32; activations scale with it
DEFAULT_MAX_SEQUENCE_LENGTH = 1 << 18
DEFAULT_MAX_NUM_STEPS = 1 << 16
MAX_RANK = 16


class ServerLimits:
    """Flags: `max_batch_size` rows, `max_tensor_elements` per input or output tensor,
    `max_sequence_length` positions on a time axis, `max_num_steps` per generate request."""

    def __init__(self, max_batch_size=DEFAULT_MAX_BATCH_SIZE,
                 max_tensor_elements=DEFAULT_MAX_TENSOR_ELEMENTS,
                 max_sequence_length=DEFAULT_MAX_SEQUENCE_LENGTH,
                 max_num_steps=DEFAULT_MAX_NUM_STEPS):
        for name, value in (("max_batch_size", max_batch_size),
                            ("max_tensor_elements", max_tensor_elements),
                            ("max_sequence_length", max_sequence_length),
                            ("max_num_steps", max_num_steps)):
            if int(value) < 1:
                raise ValueError(f"--{name} must be a positive integer; received {value!r}.")
        self.max_batch_size = int(max_batch_size)
        self.max_tensor_elements = int(max_tensor_elements)
        self.max_sequence_length = int(max_sequence_length)
        self.max_num_steps = int(max_num_steps)

    def for_model(self, manifest):
        return ModelLimits(self, manifest)


def model_length(manifest):
    """The number of positions the model generates at most (None: unbounded)."""
    config = ((manifest or {}).get("model") or {}).get("config") or {}
    if config.get("max_length"):
        return int(config["max_length"])
    source = SourceSpec.from_manifest(manifest)
    if source is not None and source.max_target_length:
        return source.max_target_length
    image = config.get("image_shape")
    if image:
        return int(image[0]) * int(image[1])
    return None


def max_value(manifest):
    """The largest id an integer model reads in `x`, `x_prev` and `prompt` (its alphabet,
    or its start id where that is the extra row past it), or None (real values, or no
    manifest)."""
    if not manifest or not str(manifest.get("x", {}).get("dtype", "")).startswith("int"):
        return None
    config = (manifest.get("model") or {}).get("config") or {}
    levels = (manifest.get("decoding", {}).get("num_classes") or config.get("num_classes")
              or config.get("vocab_size") or config.get("num_levels")
              or config.get("target_vocab_size"))
    if not levels:
        return None
    return max(int(levels) - 1, int(manifest["x"].get("start_id", 0)))


class ModelLimits:
    """The server's limits for one model version (its manifest may be None)."""

    def __init__(self, server, manifest=None):
        self.max_batch_size = server.max_batch_size
        self.max_tensor_elements = server.max_tensor_elements
        own = model_length(manifest)
        self.sequence_flag = own is None or server.max_sequence_length < own
        self.max_sequence_length = min(server.max_sequence_length, own or math.inf)
        self.steps_flag = own is None or server.max_num_steps < own
        self.max_num_steps = min(server.max_num_steps, own or math.inf)
        config = ((manifest or {}).get("model") or {}).get("config") or {}
        self.num_classes = int(config.get("num_global_classes") or 0)
        self.max_value = max_value(manifest)
        self.source = SourceSpec.from_manifest(manifest)

    # ----------------------------------------------------------------- sizes
    def check_shape(self, key, shape, what="Input"):
        """Refuse a declared shape (TensorProto dims, JSON nesting) before allocation."""
        shape = [int(d) for d in shape]
        if len(shape) > MAX_RANK:
            raise ServingError("INVALID_ARGUMENT", f"{what} `{key}` has rank {len(shape)}; "
                                                   f"at most {MAX_RANK} dimensions are served.")
        if any(d < 0 for d in shape):
            raise ServingError("INVALID_ARGUMENT", f"{what} `{key}` declares shape {shape} "
                                                   f"with a negative dimension.")
        count = math.prod(shape)
        if count > self.max_tensor_elements:
            raise ServingError("PAYLOAD_TOO_LARGE",
                               f"{what} `{key}` of shape {shape} holds {count} elements; the "
                               f"limit is {self.max_tensor_elements} per tensor "
                               f"(--max_tensor_elements). Send fewer rows or positions.")
        if shape and shape[0] > self.max_batch_size:
            raise ServingError("PAYLOAD_TOO_LARGE",
                               f"{what} `{key}` of shape {shape} has batch {shape[0]}; the "
                               f"limit is {self.max_batch_size} rows (--max_batch_size). "
                               f"Split the request.")
        return count

    def check_positions(self, key, positions):
        if positions > self.max_sequence_length:
            source = "--max_sequence_length" if self.sequence_flag else "the model's length"
            raise ServingError("PAYLOAD_TOO_LARGE" if self.sequence_flag else "INVALID_ARGUMENT",
                               f"Input `{key}` covers {positions} positions; at most "
                               f"{self.max_sequence_length} are served ({source}).")

    def check_num_steps(self, num_steps):
        steps = int(np.max(num_steps)) if np.size(num_steps) else 0
        if steps > self.max_num_steps:
            source = "--max_num_steps" if self.steps_flag else "the model's length"
            raise ServingError("PAYLOAD_TOO_LARGE" if self.steps_flag else "INVALID_ARGUMENT",
                               f"`{contract.NUM_STEPS}` asks for {steps} steps; at most "
                               f"{self.max_num_steps} are served ({source}).")
        return steps

    def check_source(self, signature, feeds):
        """Refuse a source (`local_condition` of a sequence-to-sequence model) that breaks
        its layout, or is not padded to the signature's max_source_length positions."""
        if self.source is None or contract.LOCAL_CONDITION not in feeds:
            return
        ids = feeds[contract.LOCAL_CONDITION]
        errors = contract.source_errors(ids, self.source.vocab_size, self.source.max_length)
        if not errors and ids.shape[1] != self.source.max_length:
            errors = [f"`{contract.LOCAL_CONDITION}` has {ids.shape[1]} source positions; "
                      f"this signature takes exactly max_source_length="
                      f"{self.source.max_length}: pad each row with the pad id "
                      f"{self.source.vocab_size}."]
        if errors:
            raise ServingError("INVALID_ARGUMENT",
                               f"Signature \"{signature}\": " + " ".join(errors))

    # ----------------------------------------------------------------- requests
    def check_feeds(self, signature, input_specs, output_specs, feeds):
        """Judge decoded `feeds` ({name: array}; dtypes and ranks already checked) for
        `signature` ({name: TensorInfo} specs) and the outputs they would produce."""
        for key, array in feeds.items():
            self.check_shape(key, array.shape)
            spec = input_specs[key].shape
            dynamic_time = spec is not None and len(spec) >= 2 and spec[1] is None
            if dynamic_time and contract.state_key_from_name(key) is None:
                self.check_positions(key, array.shape[1])
        errors = contract.batch_errors({k: v.shape for k, v in feeds.items()})
        if signature == contract.SAMPLE_CHUNK:
            errors += contract.chunk_feed_errors({k: v.shape for k, v in feeds.items()})
        errors += contract.feed_value_errors(feeds, self.num_classes)
        if self.max_value is not None:  # ids past the embedding: refused, not gathered
            errors += [contract.range_error(key, feeds[key], 0, self.max_value, integral=True,
                                            kind="ids of this model")
                       for key in (contract.X, contract.X_PREV, contract.PROMPT)
                       if key in feeds and feeds[key].dtype.kind in "iu"]
        errors = [e for e in errors if e]
        if errors:
            raise ServingError("INVALID_ARGUMENT",
                               f"Signature \"{signature}\": " + " ".join(dict.fromkeys(errors)))
        self.check_outputs(feeds, output_specs)

    def check_outputs(self, feeds, output_specs):
        """Refuse a request whose outputs would exceed the limits: batch from the inputs,
        unknown non-batch axes as long as the longest input axis (or `num_steps`)."""
        batch = max((a.shape[0] for a in feeds.values() if a.ndim), default=1)
        if not feeds:
            return
        positions = max((d for a in feeds.values() for d in a.shape[1:2]), default=1)
        if contract.NUM_STEPS in feeds:
            steps = self.check_num_steps(feeds[contract.NUM_STEPS])
            positions = max(positions, steps)
            self.check_positions(contract.NUM_STEPS, steps)
        for key, info in output_specs.items():
            if info.shape is None:
                continue
            dims = [batch if i == 0 and d is None else (positions if d is None else d)
                    for i, d in enumerate(info.shape)]
            self.check_shape(key, dims, what="Output")
