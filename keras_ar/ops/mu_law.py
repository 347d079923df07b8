"""Mu-law companding (ITU-T G.711), as used by WaveNet (van den Oord et al. 2016, sec. 2.2).

    f(x) = sign(x) * ln(1 + mu |x|) / ln(1 + mu),   x in [-1, 1]

`mu_law_encode` quantises f(x) to `quantization_channels` integer levels (mu = levels - 1);
`mu_law_decode` maps a level back to the centre value in [-1, 1].
"""

import math

import tensorflow as tf


def mu_law_encode(audio, quantization_channels=256):
    """float audio in [-1, 1] -> int32 ids in [0, quantization_channels)."""
    mu = float(quantization_channels - 1)
    audio = tf.clip_by_value(tf.cast(audio, tf.float32), -1.0, 1.0)
    magnitude = tf.math.log1p(mu * tf.abs(audio)) / math.log1p(mu)
    signal = tf.sign(audio) * magnitude
    return tf.cast(tf.floor((signal + 1.0) / 2.0 * mu + 0.5), tf.int32)


def mu_law_decode(ids, quantization_channels=256):
    """int ids in [0, quantization_channels) -> float32 audio in [-1, 1]."""
    mu = float(quantization_channels - 1)
    signal = 2.0 * (tf.cast(ids, tf.float32) / mu) - 1.0
    magnitude = (1.0 / mu) * (tf.pow(1.0 + mu, tf.abs(signal)) - 1.0)
    return tf.sign(signal) * magnitude
