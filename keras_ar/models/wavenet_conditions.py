"""Validation of WaveNet's conditioning inputs (clear errors naming received vs expected)."""

import tensorflow as tf

from keras_ar import contract
from keras_ar.ops import validation


def validate(model, conditions, per_step):
    """Check keys, ranks, dtypes and sizes; return the converted conditions dict."""
    allowed = set()
    if model.num_global_classes or model.global_condition_dim:
        allowed.add(contract.GLOBAL_CONDITION)
    if model.local_condition_dim:
        allowed.add(contract.LOCAL_CONDITION)
    unexpected = sorted(set(conditions) - allowed)
    if unexpected:
        raise ValueError(
            f"This WaveNet takes no {unexpected} (configured conditions: {sorted(allowed)}). "
            "Set num_global_classes/global_condition_dim or local_condition_dim to use them.")
    missing = sorted(allowed - set(conditions))
    if missing:
        raise ValueError(
            f"This WaveNet requires conditions {missing}; received only "
            f"{sorted(conditions)}. Pass them in `inputs` / `conditions`.")
    out = {}
    if contract.GLOBAL_CONDITION in conditions:
        out[contract.GLOBAL_CONDITION] = _global(model, conditions[contract.GLOBAL_CONDITION])
    if contract.LOCAL_CONDITION in conditions:
        local = tf.convert_to_tensor(conditions[contract.LOCAL_CONDITION])
        name = contract.LOCAL_CONDITION
        if per_step:
            validation.check_rank(local, 2, name, "[batch, local_condition_dim]: the frame "
                                  "of the current step")
            validation.check_dim(local, 1, model.local_condition_dim, name,
                                 "[batch, local_condition_dim]")
        else:
            validation.check_rank(local, 3, name,
                                  "[batch, ceil(time / local_hop), local_condition_dim]")
            validation.check_dim(local, 2, model.local_condition_dim, name,
                                 "[batch, frames, local_condition_dim]")
        validation.check_float(local, name)
        validation.check_finite(local, name)
        out[name] = local
    return out


def _global(model, value):
    return validation.check_global_condition(
        value, model.num_global_classes, model.global_condition_dim)


def check_local_length(model, local, length):
    """The frames must cover `length` samples."""
    frames = local.shape[1]
    if frames is not None and isinstance(length, int):
        needed = -(-length // model.local_hop)
        if frames < needed:
            raise ValueError(
                f"`local_condition` has {frames} frames; {length} samples at local_hop="
                f"{model.local_hop} need at least {needed}.")
