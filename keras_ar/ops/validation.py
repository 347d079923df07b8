"""Input checks that name what was received and what is expected.

Static problems (rank, dtype, sizes known at trace time) raise `ValueError` at once. Value
problems (ids out of range, NaN) raise `ValueError` in eager mode and, inside compiled graphs,
`tf.errors.InvalidArgumentError` through `tf.debugging` asserts. XLA drops asserts, so
models compiled with `jit_compile=True` run these checks before the compiled step
(`keras_ar.models.input_checks`). Exporters trace with `runtime_checks(False)` so that no
`Assert` op reaches TFLite or ONNX graphs.
"""

import contextlib
import threading

import numpy as np
import tensorflow as tf

_STATE = threading.local()


def runtime_checks_enabled():
    return getattr(_STATE, "enabled", True)


@contextlib.contextmanager
def runtime_checks(enabled):
    """Turn value checks on or off while tracing (exporters turn them off)."""
    previous = runtime_checks_enabled()
    _STATE.enabled = bool(enabled)
    try:
        yield
    finally:
        _STATE.enabled = previous


def check_rank(tensor, rank, name, layout):
    """Raise ValueError unless `tensor` has `rank` dimensions."""
    actual = tensor.shape.rank
    if actual is not None and actual != rank:
        raise ValueError(
            f"`{name}` must have rank {rank} ({layout}); received shape {tensor.shape}."
        )


def check_dim(tensor, axis, size, name, layout):
    actual = tensor.shape[axis]
    if actual is not None and size is not None and actual != size:
        raise ValueError(
            f"`{name}` must have {size} entries on axis {axis} ({layout}); "
            f"received shape {tensor.shape}."
        )


def check_integer(tensor, name):
    if not tensor.dtype.is_integer:
        raise ValueError(
            f"`{name}` must hold integer class ids (int32); received dtype {tensor.dtype.name}. "
            "Encode the data first (e.g. keras_ar.ops.mu_law_encode for audio)."
        )


def check_float(tensor, name):
    if not tensor.dtype.is_floating:
        raise ValueError(f"`{name}` must be float32; received dtype {tensor.dtype.name}.")


def check_ids_in_range(ids, num_classes, name):
    """Ids must lie in [0, num_classes). Returns `ids`; in a graph, gated on the asserts so
    that no op reading them (an embedding gather) can fail first with a vaguer message."""
    if not runtime_checks_enabled():
        return ids
    if tf.executing_eagerly():
        values = np.asarray(ids)
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"`{name}` must hold ids in [0, {num_classes}); received values in "
                f"[{values.min()}, {values.max()}]."
            )
        return ids
    checks = [
        tf.debugging.assert_greater_equal(
            ids, tf.cast(0, ids.dtype), message=f"`{name}` must hold ids >= 0"),
        tf.debugging.assert_less(
            ids, tf.cast(num_classes, ids.dtype),
            message=f"`{name}` must hold ids < {num_classes}")]
    with tf.control_dependencies(checks):
        return tf.identity(ids)


def check_finite(tensor, name):
    if not runtime_checks_enabled():
        return
    if tf.executing_eagerly():
        values = np.asarray(tensor)
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"`{name}` must be finite; received {int(np.sum(~np.isfinite(values)))} "
                "NaN/inf values."
            )
        return
    tf.debugging.assert_all_finite(tensor, message=f"`{name}` must be finite (no NaN/inf)")


def check_max(value, maximum, name, what):
    """`value` (int tensor) must be <= `maximum`."""
    if not runtime_checks_enabled():
        return
    if tf.executing_eagerly():
        actual = int(np.max(np.asarray(value))) if np.size(value) else 0
        maximum = int(np.asarray(maximum))
        if actual > maximum:
            raise ValueError(f"{what}: `{name}` reaches {actual}, the maximum is {maximum}.")
        return
    tf.debugging.assert_less_equal(
        value, tf.cast(maximum, value.dtype), message=f"{what}: `{name}` exceeds {maximum}")


def check_global_condition(value, num_classes, dim, name="global_condition"):
    """A global condition: int ids `[B]` in [0, num_classes) when `num_classes`, else a
    finite float vector `[B, dim]`. Returns it as int32 / float32."""
    value = tf.convert_to_tensor(value)
    if num_classes:
        check_rank(value, 1, name, "[batch] class ids")
        check_integer(value, name)
        return tf.cast(check_ids_in_range(value, num_classes, name), tf.int32)
    layout = f"[batch, global_condition_dim={dim}]"
    check_rank(value, 2, name, layout)
    check_dim(value, 1, dim, name, layout)
    check_float(value, name)
    check_finite(value, name)
    return tf.cast(value, tf.float32)
