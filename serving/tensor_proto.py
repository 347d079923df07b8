"""numpy <-> tensorflow.TensorProto, fast for numeric arrays (`tensor_content` bytes).

Numeric arrays travel as raw little-endian bytes in `tensor_content` (one copy each way:
`ndarray.tobytes()` out, `np.frombuffer` in, which aliases the message's bytes, so decoded
arrays are read-only). Falls back to `tf.make_ndarray` / `tf.make_tensor_proto` for strings
and for protos that carry typed value lists (`float_val`, ...), as some clients send them.
"""

import math
import sys

import numpy as np

# tensorflow/core/framework/types.proto
_TO_ENUM = {
    np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int32"): 3,
    np.dtype("uint8"): 4, np.dtype("int16"): 5, np.dtype("int8"): 6, np.dtype("int64"): 9,
    np.dtype("bool"): 10, np.dtype("uint16"): 17, np.dtype("float16"): 19,
    np.dtype("uint32"): 22, np.dtype("uint64"): 23,
}
_FROM_ENUM = {v: k for k, v in _TO_ENUM.items()}
_LITTLE = {v: k.newbyteorder("<") for v, k in _FROM_ENUM.items()}
_NATIVE_LITTLE = sys.byteorder == "little"
DT_STRING = 7


def to_tensor_proto(array):
    """A numpy array -> TensorProto."""
    from tensorflow.core.framework import tensor_pb2

    proto = tensor_pb2.TensorProto()
    fill_tensor_proto(proto, array)
    return proto


def fill_tensor_proto(proto, array):
    """Write `array` into the (empty) TensorProto `proto` in place, e.g.
    `request.inputs[name]`: no intermediate message, no `CopyFrom`."""
    array = np.asarray(array)
    if array.dtype.byteorder not in ("=", "|"):  # non-native byte order: native first
        array = array.astype(array.dtype.newbyteorder("="))
    enum = _TO_ENUM.get(array.dtype)
    if enum is None:
        import tensorflow as tf

        proto.CopyFrom(tf.make_tensor_proto(array))
        return proto
    proto.dtype = enum
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add(size=size)
    if not _NATIVE_LITTLE:
        array = array.astype(array.dtype.newbyteorder("<"))
    proto.tensor_content = array.tobytes()  # C order, whatever the strides
    return proto


def to_ndarray(proto):
    """A TensorProto -> numpy array (object array of bytes for DT_STRING).

    Numeric `tensor_content` is decoded without a copy (a read-only view of the bytes)."""
    dtype = _LITTLE.get(proto.dtype)
    content = proto.tensor_content
    if dtype is None or not content:
        import tensorflow as tf

        return tf.make_ndarray(proto)
    shape = [d.size for d in proto.tensor_shape.dim]
    count = math.prod(shape)
    if count < 0 or len(content) != count * dtype.itemsize:
        raise ValueError(f"tensor_content holds {len(content)} bytes but the shape {shape} "
                         f"of {dtype.name} needs {max(count, 0) * dtype.itemsize}.")
    array = np.frombuffer(content, dtype=dtype).reshape(shape)
    return array if _NATIVE_LITTLE else array.astype(dtype.newbyteorder("="))


# the repeated field that carries each dtype's values (tensorflow/core/framework/tensor.proto)
_VALUE_FIELDS = {1: "float_val", 2: "double_val", 3: "int_val", 4: "int_val", 5: "int_val",
                 6: "int_val", 9: "int64_val", 10: "bool_val", 17: "int_val", 19: "half_val",
                 14: "half_val", 22: "uint32_val", 23: "uint64_val", DT_STRING: "string_val"}
_ITEMSIZE = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 9: 8, 10: 1, 17: 2, 19: 2, 14: 2, 22: 4,
             23: 8}


def declared_shape(proto):
    """The shape a TensorProto declares (a list of ints; may hold negatives)."""
    return [int(d.size) for d in proto.tensor_shape.dim]


def value_count_error(proto):
    """A message when the values sent do not fill the declared shape exactly (TF Serving
    refuses such tensors; TensorFlow would repeat the last value to fill it), else None.
    Call after the shape passed the size limits: nothing here allocates."""
    shape = declared_shape(proto)
    count = math.prod(shape)
    field = _VALUE_FIELDS.get(proto.dtype)
    if field is None:
        return f"dtype enum {proto.dtype} is not served."
    if proto.tensor_content and proto.dtype != DT_STRING:
        needed = count * _ITEMSIZE[proto.dtype]
        if len(proto.tensor_content) != needed:
            return (f"tensor_content holds {len(proto.tensor_content)} bytes but the declared "
                    f"shape {shape} needs {needed}; send exactly one value per element.")
        return None
    sent = len(getattr(proto, field))
    if sent != count:
        return (f"{field} holds {sent} values but the declared shape {shape} has {count} "
                f"elements; send exactly one value per element.")
    return None


def numpy_dtype(enum):
    """A DataType enum value -> numpy dtype (`object` for DT_STRING)."""
    if enum == DT_STRING:
        return np.dtype(object)
    if enum not in _FROM_ENUM:
        raise ValueError(f"Unsupported tensor dtype enum {enum}.")
    return _FROM_ENUM[enum]
