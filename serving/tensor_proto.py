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


def numpy_dtype(enum):
    """A DataType enum value -> numpy dtype (`object` for DT_STRING)."""
    if enum == DT_STRING:
        return np.dtype(object)
    if enum not in _FROM_ENUM:
        raise ValueError(f"Unsupported tensor dtype enum {enum}.")
    return _FROM_ENUM[enum]
