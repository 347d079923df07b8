"""Softmax over K classes per value (optionally per channel)."""

import keras
import tensorflow as tf

from keras_ar.heads.distribution_head import DistributionHead
from keras_ar.ops.sampling import sample_categorical


@keras.saving.register_keras_serializable(package="keras_ar")
class CategoricalHead(DistributionHead):
    """p(x = k) = softmax(params)_k, k in [0, num_classes).

    With `num_channels=C` a position holds C independent-given-params values (e.g. the
    sub-pixels of a pixel whose channel dependencies live in the network); params are laid out
    `[..., C * K]` channel-major and `log_prob` sums over the channels.

    Sampling: one uniform per value, inverse CDF after temperature, top-k and top-p
    (`keras_ar.ops.sample_categorical`).
    """

    def __init__(self, num_classes, num_channels=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 2:
            raise ValueError(f"`num_classes` must be >= 2; received {num_classes}.")
        self.num_classes = int(num_classes)
        self.num_channels = None if num_channels is None else int(num_channels)

    @property
    def _channels(self):
        return self.num_channels or 1

    @property
    def num_params(self):
        return self.num_classes * self._channels

    @property
    def event_shape(self):
        return () if self.num_channels is None else (self.num_channels,)

    @property
    def noise_size(self):
        return self._channels

    def _logits(self, params):
        params = tf.cast(params, tf.float32)
        if self.num_channels is None:
            return params
        shape = tf.concat([tf.shape(params)[:-1], [self.num_channels, self.num_classes]], 0)
        return tf.reshape(params, shape)  # (..., C, K)

    def log_prob(self, params, x):
        logp = tf.nn.log_softmax(self._logits(params), axis=-1)
        mask = tf.equal(tf.expand_dims(tf.cast(x, tf.int32), -1), tf.range(self.num_classes))
        value = tf.reduce_sum(tf.where(mask, logp, tf.zeros_like(logp)), axis=-1)
        if self.num_channels is not None:
            value = tf.reduce_sum(value, axis=-1)
        return value

    def sample(self, params, noise, temperature, top_k, top_p):
        channels = self._channels
        logits = tf.reshape(tf.cast(params, tf.float32), [-1, self.num_classes])  # (B*C, K)
        uniform = tf.reshape(noise, [-1])

        def per_value(control):  # (B,) -> (B*C,); as is for one channel (fewer ops per step)
            if channels == 1:
                return control
            return tf.reshape(tf.tile(control[:, None], [1, channels]), [-1])

        ids = sample_categorical(
            logits, uniform, per_value(temperature), per_value(top_k), per_value(top_p))
        if self.num_channels is None:
            return ids
        return tf.reshape(ids, [-1, self.num_channels])

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, num_channels=self.num_channels)
        return config
