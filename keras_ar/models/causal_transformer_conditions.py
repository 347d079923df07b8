"""Validation of CausalTransformer's conditioning inputs (errors name received vs expected)."""

import tensorflow as tf

from keras_ar import contract
from keras_ar.ops import validation


def configured(model):
    """The condition keys this model is configured for."""
    keys = []
    if model.num_global_classes or model.global_condition_dim:
        keys.append(contract.GLOBAL_CONDITION)
    if model.memory_dim:
        keys.append(contract.LOCAL_CONDITION)
    return tuple(keys)


def validate(model, conditions, per_step):
    """Check keys, ranks, dtypes and sizes of the conditions present; return them converted.

    Which conditions are *required* depends on the call (see `require`): `call` needs all the
    configured ones, `init_state` the memory, `step`/`prefill` the global condition.
    """
    allowed = set(configured(model))
    unexpected = sorted(set(conditions) - allowed)
    if unexpected:
        raise ValueError(
            f"This CausalTransformer takes no {unexpected} (configured conditions: "
            f"{sorted(allowed)}). Set num_global_classes/global_condition_dim or "
            "memory_dim/memory_length to use them.")
    if per_step and contract.LOCAL_CONDITION in conditions:
        raise ValueError(
            "`step` takes no `local_condition`: the encoder memory's keys/values are computed "
            "once by `init_state` and carried in the state (cross_k_<i>, cross_v_<i>). Pass "
            "the memory to `init_state` (or use `step_conditions`, which drops it).")
    out = {}
    if contract.GLOBAL_CONDITION in conditions:
        out[contract.GLOBAL_CONDITION] = _global(model, conditions[contract.GLOBAL_CONDITION])
    if contract.LOCAL_CONDITION in conditions:
        out[contract.LOCAL_CONDITION] = _memory(model, conditions[contract.LOCAL_CONDITION])
    return out


def require(model, conditions, keys, where):
    """Raise ValueError if a configured condition among `keys` is missing."""
    missing = sorted(set(keys) & set(configured(model)) - set(conditions))
    if missing:
        raise ValueError(
            f"This CausalTransformer requires {missing} in `{where}`; received only "
            f"{sorted(conditions)}. Pass them in `inputs` / `conditions`.")


def _global(model, value):
    return validation.check_global_condition(
        value, model.num_global_classes, model.global_condition_dim)


def _memory(model, value):
    value = tf.convert_to_tensor(value)
    name = contract.LOCAL_CONDITION
    layout = "[batch, memory_length, memory_dim]: the encoder memory"
    validation.check_rank(value, 3, name, layout)
    validation.check_dim(value, 1, model.memory_length, name, layout)
    validation.check_dim(value, 2, model.memory_dim, name, layout)
    validation.check_float(value, name)
    validation.check_finite(value, name)
    return value


def check_batch(batch_size, value, name):
    """A condition's static batch must equal the requested batch size."""
    batch = value.shape[0]
    if isinstance(batch_size, int) and batch is not None and batch != batch_size:
        raise ValueError(
            f"`{name}` has batch {batch}; `batch_size` is {batch_size}. Give one row per "
            "generated sequence.")
