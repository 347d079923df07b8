"""Conditioning helpers shared by the sequence models (WaveNet, ContinuousSequenceModel).

Both take `global_condition` (int32 ids `[B]` or a float vector `[B, global_condition_dim]`)
and `local_condition` (float frames `[B, F, local_condition_dim]`, whole; one frame
`[B, local_condition_dim]` per step).
"""

import tensorflow as tf

from keras_ar import contract


def condition_specs(num_global_classes, global_condition_dim, local_condition_dim,
                    per_step=False):
    """Named `tf.TensorSpec`s of the configured conditions (batch dimension None)."""
    specs = {}
    if num_global_classes:
        specs[contract.GLOBAL_CONDITION] = tf.TensorSpec([None], tf.int32)
    elif global_condition_dim:
        specs[contract.GLOBAL_CONDITION] = tf.TensorSpec([None, global_condition_dim],
                                                         tf.float32)
    if local_condition_dim:
        shape = [None] + ([] if per_step else [None]) + [local_condition_dim]
        specs[contract.LOCAL_CONDITION] = tf.TensorSpec(shape, tf.float32)
    return {name: tf.TensorSpec(spec.shape, spec.dtype, name) for name, spec in specs.items()}


def with_local_frame(conditions, frame):
    """Whole conditions -> per-step ones: `local_condition[b, frame[b]]` for each row.

    An equality mask and a sum (no gather, no new-axis slices of bool tensors, which need
    Flex in TFLite); rows past the last frame get zeros.
    """
    local = conditions.get(contract.LOCAL_CONDITION) if conditions else None
    if local is None:
        return conditions
    positions = tf.expand_dims(tf.range(tf.shape(local)[1]), 0)
    mask = tf.expand_dims(tf.equal(positions, tf.expand_dims(frame, 1)), -1)  # (B, F, 1)
    out = dict(conditions)
    out[contract.LOCAL_CONDITION] = tf.reduce_sum(
        tf.where(mask, local, tf.zeros_like(local)), axis=1)
    return out
