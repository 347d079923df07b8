"""Linear quantisation of audio (PCM): x in [-1, 1] <-> L evenly spaced integer levels.

    id = round((x + 1) / 2 * (L - 1)),   x = 2 id / (L - 1) - 1

L = 65536 is 16-bit PCM: the alphabet for which WaveNet's 256-way mu-law softmax gives way to
a discretized logistic mixture (Salimans et al. 2017; van den Oord et al. 2018, Parallel
WaveNet, sec. 2.4), whose cost does not grow with L.
"""

import tensorflow as tf


def linear_encode(audio, levels=65536):
    """float audio in [-1, 1] -> int32 ids in [0, levels)."""
    scale = float(levels - 1)
    audio = tf.clip_by_value(tf.cast(audio, tf.float32), -1.0, 1.0)
    return tf.cast(tf.floor((audio + 1.0) / 2.0 * scale + 0.5), tf.int32)


def linear_decode(ids, levels=65536):
    """int ids in [0, levels) -> float32 audio in [-1, 1]."""
    return 2.0 * tf.cast(ids, tf.float32) / float(levels - 1) - 1.0
