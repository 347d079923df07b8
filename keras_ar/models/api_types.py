"""Type aliases of the public model API (what the step protocol takes and returns)."""

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

#: A tensor, or anything `tf.convert_to_tensor` takes (NumPy arrays, nested lists, scalars).
TensorLike = tf.Tensor | np.ndarray | Sequence | float | int
#: The generation state: a flat dict of fixed-shape tensors with a leading batch dimension,
#: always holding `index: int32[B]`.
State = dict[str, tf.Tensor]
#: Conditions by name (`global_condition`, `local_condition`), or None for none.
Conditions = dict[str, TensorLike] | None
#: A model's inputs: the values `x`, or a dict with `x`, `lengths` and the conditions.
Inputs = TensorLike | dict[str, TensorLike]
