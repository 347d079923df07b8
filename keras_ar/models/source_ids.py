"""Source ids of the sequence-to-sequence models (ByteNet, EncoderDecoderTransformer).

The source is the condition `local_condition`: int32 `[B, S]` ids in [0, source_vocab_size),
S <= max_source_length, each row's tokens first and then the pad id `source_vocab_size` (the
one reserved id) up to S. A row's source length is its number of non-pad ids (at least 1).
"""

import numpy as np
import tensorflow as tf

from keras_ar import contract
from keras_ar.ops import validation

LAYOUT = contract.SOURCE_LAYOUT


def validate(ids, vocab_size, max_length, name=contract.LOCAL_CONDITION):
    """Check rank, dtype, length <= max_length, ids in [0, vocab_size] (vocab_size = pad),
    every row non-empty with its pads trailing; return int32 ids `[B, S]`."""
    ids = tf.convert_to_tensor(ids)
    validation.check_rank(ids, 2, name, LAYOUT)
    validation.check_integer(ids, name)
    length = ids.shape[1]
    if length is not None and not 1 <= length <= max_length:
        raise ValueError(
            f"`{name}` has {length} source positions; this model takes 1 to "
            f"max_source_length={max_length}. Truncate the source or build a model with a "
            "larger max_source_length.")
    if length is None:
        validation.check_max(tf.shape(ids)[1], max_length, f"{name} length",
                             f"Sources hold at most max_source_length={max_length} ids")
    ids = validation.check_ids_in_range(ids, vocab_size + 1, name)
    return _check_layout(tf.cast(ids, tf.int32), vocab_size, name)


def _check_layout(ids, pad, name):
    if not validation.runtime_checks_enabled():
        return ids
    if tf.executing_eagerly():  # the hosts' and servers' check (keras_ar.contract)
        errors = contract.source_errors(np.asarray(ids), pad, None, name)
        if errors:
            raise ValueError(" ".join(errors))
        return ids
    is_pad = tf.equal(ids, pad)
    checks = [
        tf.debugging.assert_equal(
            tf.reduce_any(tf.reduce_all(is_pad, axis=1)), False,
            message=f"`{name}`: a row is empty (only pad ids); every source needs a token"),
        tf.debugging.assert_equal(
            tf.reduce_any(tf.logical_and(is_pad[:, :-1], tf.logical_not(is_pad[:, 1:]))),
            False, message=f"`{name}`: a token follows a pad id; pad at the end of rows")]
    with tf.control_dependencies(checks):
        return tf.identity(ids)


def pad_to(ids, max_length, pad):
    """ids [B, S <= max_length] -> [B, max_length], filled with `pad` past S."""
    if ids.shape[1] == max_length:
        return ids
    fill = tf.fill([tf.shape(ids)[0], max_length - tf.shape(ids)[1]], pad)
    return tf.concat([ids, fill], axis=1)


def lengths(ids, pad):
    """int32 [B]: each row's number of non-pad ids."""
    return tf.reduce_sum(tf.cast(tf.not_equal(ids, pad), tf.int32), axis=1)
