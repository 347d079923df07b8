"""numpy <-> tensorflow.TensorProto, fast for numeric arrays (`tensor_content` bytes).

Falls back to `tf.make_ndarray` / `tf.make_tensor_proto` for strings and for protos that
carry typed value lists (`float_val`, ...), as some clients send them.
"""

import numpy as np

# tensorflow/core/framework/types.proto
_TO_ENUM = {
    np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int32"): 3,
    np.dtype("uint8"): 4, np.dtype("int16"): 5, np.dtype("int8"): 6, np.dtype("int64"): 9,
    np.dtype("bool"): 10, np.dtype("uint16"): 17, np.dtype("float16"): 19,
    np.dtype("uint32"): 22, np.dtype("uint64"): 23,
}
_FROM_ENUM = {v: k for k, v in _TO_ENUM.items()}
DT_STRING = 7


def to_tensor_proto(array):
    """A numpy array -> TensorProto."""
    from tensorflow.core.framework import tensor_pb2

    array = np.asarray(array)
    if array.dtype not in _TO_ENUM:
        import tensorflow as tf

        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=_TO_ENUM[array.dtype])
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    proto.tensor_content = np.ascontiguousarray(array).astype(
        array.dtype.newbyteorder("<"), copy=False).tobytes()
    return proto


def to_ndarray(proto):
    """A TensorProto -> numpy array (object array of bytes for DT_STRING)."""
    shape = [d.size for d in proto.tensor_shape.dim]
    if proto.dtype in _FROM_ENUM and proto.tensor_content:
        dtype = _FROM_ENUM[proto.dtype]
        array = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        if array.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"tensor_content holds {array.size} values but the shape "
                             f"{shape} needs {int(np.prod(shape))}.")
        return array.astype(dtype).reshape(shape)
    import tensorflow as tf

    return tf.make_ndarray(proto)


def numpy_dtype(enum):
    """A DataType enum value -> numpy dtype (`object` for DT_STRING)."""
    if enum == DT_STRING:
        return np.dtype(object)
    if enum not in _FROM_ENUM:
        raise ValueError(f"Unsupported tensor dtype enum {enum}.")
    return _FROM_ENUM[enum]
