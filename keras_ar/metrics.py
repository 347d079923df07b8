"""Likelihood metrics for images and sequences."""

import math

import numpy as np
import tensorflow as tf


def bits_per_dim(log_prob, num_dims):
    """-log p(x) / (D ln 2): nats per example -> bits per dimension.

    `log_prob` is log p(x) in nats (a scalar or `[B]`, e.g. `model.log_prob(inputs)`);
    `num_dims` is D, the number of values per example, or a shape such as `image_shape`
    (H, W, C), whose product is taken. Returns a float32 tensor shaped like `log_prob`.
    """
    dims = int(np.prod(num_dims)) if np.ndim(num_dims) else int(num_dims)
    if dims < 1:
        raise ValueError(f"`num_dims` must be positive; received {num_dims}.")
    log_prob = tf.cast(log_prob, tf.float32)
    return -log_prob / (dims * math.log(2.0))
