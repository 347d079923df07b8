"""numpy <-> TensorProto: tensor_content bytes, the same protos TensorFlow writes and reads."""

import numpy as np
import pytest
import tensorflow as tf

from serving import tensor_proto

ARRAYS = [np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.array([-1, 7], np.int32),
          np.array([[True, False]]), np.zeros((0, 3), np.float32), np.float64(2.5),
          np.arange(6, dtype=np.int64).reshape(3, 2)[::2],  # not contiguous
          np.arange(4, dtype=">f4")]  # big-endian


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype.str}{list(a.shape)}")
def test_round_trip_and_tensorflow_agree(array):
    proto = tensor_proto.to_tensor_proto(array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
    back = tensor_proto.to_ndarray(proto)
    assert back.shape == array.shape and back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)
    native = array.astype(array.dtype.newbyteorder("="))  # TF misreads big-endian arrays
    np.testing.assert_array_equal(tensor_proto.to_ndarray(tf.make_tensor_proto(native)), array)


def test_typed_value_lists_and_strings_fall_back_to_tensorflow():
    floats = tf.make_tensor_proto([1.5, 2.5], dtype=tf.float32)
    floats.ClearField("tensor_content")
    floats.float_val.extend([1.5, 2.5])
    np.testing.assert_array_equal(tensor_proto.to_ndarray(floats), [1.5, 2.5])
    strings = tensor_proto.to_tensor_proto(np.array([b"a", b"bc"], dtype=object))
    assert list(tensor_proto.to_ndarray(strings)) == [b"a", b"bc"]


def test_content_that_does_not_fill_the_shape_is_refused():
    proto = tensor_proto.to_tensor_proto(np.zeros((2, 3), np.float32))
    proto.tensor_shape.dim[1].size = 4
    with pytest.raises(ValueError, match=r"holds 24 bytes but the shape \[2, 4\]"):
        tensor_proto.to_ndarray(proto)


def test_decoded_arrays_are_read_only_views():
    back = tensor_proto.to_ndarray(tensor_proto.to_tensor_proto(np.ones(3, np.float32)))
    assert not back.flags.writeable
