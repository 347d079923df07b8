"""Input checks of `ContinuousSequenceModel`: each error names what was received and what is
expected. Static problems raise `ValueError` at once; value problems (NaN, lengths) raise
`ValueError` eagerly and `tf.debugging` asserts inside compiled graphs (off while exporting,
see `keras_ar.ops.validation.runtime_checks`)."""

import numpy as np
import tensorflow as tf

from keras_ar import contract
from keras_ar.ops import validation


def validate_x(model, x, name):
    """float32 values `[B, T, feature_dim]` (finiteness is checked separately)."""
    x = tf.convert_to_tensor(x)
    layout = f"[batch, time, feature_dim={model.feature_dim}] float32 values"
    validation.check_rank(x, 3, name, layout)
    validation.check_dim(x, 2, model.feature_dim, name, layout)
    validation.check_float(x, name)
    length = x.shape[1]
    if length is not None and length > model.max_length:
        raise ValueError(
            f"`{name}` has {length} steps; this model was built with max_length="
            f"{model.max_length}. Crop the sequences or build the model with a larger "
            "max_length.")
    return tf.cast(x, tf.float32)


def validate_lengths(lengths, x):
    """int `[B]` lengths with 1 <= lengths <= T = x.shape[1]; returns int32."""
    lengths = tf.convert_to_tensor(lengths)
    name = contract.LENGTHS
    validation.check_rank(lengths, 1, name, "[batch] number of valid steps per sequence")
    if not lengths.dtype.is_integer:
        raise ValueError(f"`{name}` must be int32 step counts; received dtype "
                         f"{lengths.dtype.name}.")
    batch, x_batch = lengths.shape[0], x.shape[0]
    if batch is not None and x_batch is not None and batch != x_batch:
        raise ValueError(f"`{name}` has {batch} entries; `x` has batch size {x_batch}.")
    lengths = tf.cast(lengths, tf.int32)
    if not validation.runtime_checks_enabled():
        return lengths
    time = tf.shape(x)[1]
    if tf.executing_eagerly():
        values, limit = np.asarray(lengths), int(time)
        if values.size and (values.min() < 1 or values.max() > limit):
            raise ValueError(
                f"`{name}` must lie in [1, {limit}] (1 <= length <= the time axis of `x`); "
                f"received values in [{values.min()}, {values.max()}]. Drop empty sequences "
                "and pad `x` to the longest one.")
        return lengths
    tf.debugging.assert_greater_equal(
        lengths, 1, message=f"`{name}` must be >= 1 (empty sequences are not allowed)")
    tf.debugging.assert_less_equal(
        lengths, time, message=f"`{name}` must be <= the time axis of `x`")
    return lengths


MASK = "mask"


def lengths_from_mask(mask, x):
    """`[B, T]` padding mask (bool or 0/1 numbers: 1 on the valid steps) -> int32 lengths.

    A row must be a prefix mask, 1 ... 1 0 ... 0 with at least one 1: the model's padding
    comes after a sequence's values, never inside it."""
    mask = tf.convert_to_tensor(mask)
    layout = "[batch, time]: 1 on each sequence's valid steps, then 0 on its padding"
    validation.check_rank(mask, 2, MASK, layout)
    validation.check_dim(mask, 1, x.shape[1], MASK, layout + f"; `x` has shape {x.shape}")
    validation.check_dim(mask, 0, x.shape[0], MASK, layout + f"; `x` has shape {x.shape}")
    on = tf.cast(tf.not_equal(mask, tf.zeros_like(mask)), tf.int32)  # (B, T)
    lengths = tf.reduce_sum(on, axis=1)
    if validation.runtime_checks_enabled():
        _check_prefix(mask, on, lengths)
    return validate_lengths(lengths, x)


def _check_prefix(mask, on, lengths):
    not_prefix = tf.reduce_any(
        tf.not_equal(on, tf.cast(valid_mask(lengths, tf.shape(on)[1]), tf.int32)), axis=1)
    message = (f"`{MASK}` must be a prefix mask per row (1 on the first n steps, 0 after: "
               "padding only at the end)")
    if not tf.executing_eagerly():
        tf.debugging.assert_equal(tf.reduce_any(not_prefix), False, message=message)
        return
    values = np.asarray(mask)
    if not np.all((values == 0) | (values == 1)):
        raise ValueError(f"`{MASK}` must hold 0/1 (or bool) values; received values "
                         f"{sorted(set(np.unique(values).tolist()) - {0, 1})[:5]}.")
    empty = np.flatnonzero(np.asarray(lengths) == 0)
    if empty.size:
        raise ValueError(f"`{MASK}` has rows {empty.tolist()} with no valid step; every "
                         "sequence needs at least one. Drop empty sequences.")
    rows = np.flatnonzero(np.asarray(not_prefix))
    if rows.size:
        raise ValueError(
            f"{message}; received rows {rows.tolist()} with gaps, e.g. row {rows[0]}: "
            f"{np.asarray(on)[rows[0]].tolist()}. Move padding to the end of each sequence "
            "or pass `lengths` instead.")


def valid_mask(lengths, time):
    """[B, T] bool: position t < lengths[b]."""
    return tf.expand_dims(tf.range(time), 0) < tf.expand_dims(lengths, 1)


def check_finite_within(x, lengths, name):
    """Values within `lengths` must be finite (padding may hold anything, even NaN)."""
    mask = tf.expand_dims(valid_mask(lengths, tf.shape(x)[1]), -1)
    validation.check_finite(tf.where(mask, x, tf.zeros_like(x)), name)
    return tf.where(mask, x, tf.zeros_like(x))


def validate_conditions(model, conditions, per_step):
    """Check keys, ranks, dtypes and sizes; return the converted conditions dict."""
    allowed = set(model.condition_specs(per_step))
    unexpected = sorted(set(conditions) - allowed)
    if unexpected:
        raise ValueError(
            f"This ContinuousSequenceModel takes no {unexpected} (configured conditions: "
            f"{sorted(allowed)}). Set num_global_classes/global_condition_dim or "
            "local_condition_dim to use them.")
    missing = sorted(allowed - set(conditions))
    if missing:
        raise ValueError(
            f"This ContinuousSequenceModel requires conditions {missing}; received only "
            f"{sorted(conditions)}. Pass them in `inputs` / `conditions`.")
    out = {}
    if contract.GLOBAL_CONDITION in conditions:
        out[contract.GLOBAL_CONDITION] = _global(model, conditions[contract.GLOBAL_CONDITION])
    if contract.LOCAL_CONDITION in conditions:
        out[contract.LOCAL_CONDITION] = _local(model, conditions[contract.LOCAL_CONDITION],
                                               per_step)
    return out


def _global(model, value):
    return validation.check_global_condition(
        value, model.num_global_classes, model.global_condition_dim)


def _local(model, value, per_step):
    value = tf.convert_to_tensor(value)
    name = contract.LOCAL_CONDITION
    dim = model.local_condition_dim
    if per_step:
        layout = f"[batch, local_condition_dim={dim}]: the features of the current step"
        validation.check_rank(value, 2, name, layout)
        validation.check_dim(value, 1, dim, name, layout)
    else:
        layout = f"[batch, time, local_condition_dim={dim}], one feature vector per step"
        validation.check_rank(value, 3, name, layout)
        validation.check_dim(value, 2, dim, name, layout)
    validation.check_float(value, name)
    validation.check_finite(value, name)
    return tf.cast(value, tf.float32)


def check_local_covers(local, length):
    """`local_condition` must have at least `length` steps (static check)."""
    steps = local.shape[1]
    if steps is not None and isinstance(length, int) and steps < length:
        raise ValueError(
            f"`local_condition` has {steps} steps; `x` has {length}: give one feature vector "
            "per step.")
