"""Synthetic variable-length continuous sequences for tests (numpy only, no downloads).

Two kinds (the class label is the kind, for conditioning tests):

* 0, damped oscillations: x_t = a e^{-g t} cos(w t + phi_j) + n_t, with phases phi_j spread
  over the feature dimensions (a circle-like spiral for d = 2);
* 1, random-walk strokes: x_t = sum_{s<=t} delta_s, delta_s ~ N(drift, 0.15^2) per dimension,
  with a per-sequence drift.

Lengths are drawn uniformly from [min_length, max_length]; `x` is zero-padded to max_length.
"""

import numpy as np

OSCILLATION, RANDOM_WALK = 0, 1


def damped_oscillation(length, feature_dim, rng):
    t = np.arange(length, dtype=np.float64)[:, None]
    amplitude = rng.uniform(0.5, 1.0)
    decay = rng.uniform(0.02, 0.1)
    omega = rng.uniform(0.3, 0.8)
    phases = rng.uniform(0, 2 * np.pi) + np.arange(feature_dim) * np.pi / 2
    values = amplitude * np.exp(-decay * t) * np.cos(omega * t + phases[None, :])
    return values + rng.normal(0.0, 0.02, values.shape)


def random_walk(length, feature_dim, rng):
    drift = rng.normal(0.0, 0.05, feature_dim)
    steps = rng.normal(drift, 0.15, (length, feature_dim))
    return np.cumsum(steps, axis=0)


def make_sequences(num_sequences, feature_dim=2, min_length=4, max_length=16, kinds=(0, 1),
                   seed=0):
    """-> {"x": float32 [N, max_length, d] zero-padded, "lengths": int32 [N],
    "global_condition": int32 [N] kind ids}."""
    if not 1 <= min_length <= max_length:
        raise ValueError(
            f"Need 1 <= min_length <= max_length; received {min_length}, {max_length}.")
    rng = np.random.default_rng(seed)
    x = np.zeros((num_sequences, max_length, feature_dim), np.float32)
    lengths = rng.integers(min_length, max_length + 1, num_sequences).astype(np.int32)
    labels = rng.choice(np.asarray(kinds, np.int32), num_sequences).astype(np.int32)
    makers = {OSCILLATION: damped_oscillation, RANDOM_WALK: random_walk}
    for i in range(num_sequences):
        x[i, :lengths[i]] = makers[int(labels[i])](int(lengths[i]), feature_dim, rng)
    return {"x": x, "lengths": lengths, "global_condition": labels}
