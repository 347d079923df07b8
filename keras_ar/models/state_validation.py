"""Validation of the step protocol's arguments: the state dict, `x_prev`, `conditions`."""

import tensorflow as tf

from keras_ar import contract
from keras_ar.ops import validation


def validate_state(model, state):
    """`state` checked against `model.state_spec()` (keys, dtypes, shapes) -> tensors."""
    if not isinstance(state, dict):
        raise ValueError(
            f"`state` must be the dict returned by init_state/step; received "
            f"{type(state).__name__}.")
    spec = model.state_spec()
    missing = sorted(set(spec) - set(state))
    extra = sorted(set(state) - set(spec))
    if missing or extra:
        raise ValueError(
            f"`state` keys do not match this model's state_spec: missing {missing}, "
            f"unexpected {extra}. Use the state returned by this model's init_state.")
    out = {}
    for key, value in state.items():
        value = tf.convert_to_tensor(value)
        expected = spec[key]
        if value.dtype != expected.dtype or not expected.shape.is_compatible_with(
                value.shape):
            raise ValueError(
                f"State entry `{key}` must be {expected.dtype.name}{expected.shape} "
                f"(batch first); received {value.dtype.name}{value.shape}.")
        out[key] = value
    return out


def validate_x_prev(model, x_prev):
    """One position's values `[B, *event_shape]` (start_id allowed) -> a checked tensor."""
    x_prev = tf.convert_to_tensor(x_prev)
    validation.check_rank(x_prev, 1 + len(model.event_shape), "x_prev",
                          "[batch, *event_shape]")
    return model._validate_x(x_prev[:, None], "x_prev", allow_start=True)[:, 0]


def as_dict(conditions):
    """`conditions` (None or a dict) -> a dict without None values."""
    if conditions is None:
        return {}
    if not isinstance(conditions, dict):
        raise ValueError(
            f"`conditions` must be a dict with keys among {contract.CONDITION_KEYS}; received "
            f"{type(conditions).__name__}.")
    return {k: v for k, v in conditions.items() if v is not None}
