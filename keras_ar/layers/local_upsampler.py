"""Upsampling of local-condition frames to the sample rate (WaveNet sec. 2.5)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_ar")
class LocalUpsampler(keras.layers.Layer):
    """Frames `[B, F, D]` at one frame per `hop` samples -> features `[B, F * hop, C]`.

    * `mode="transposed"`: a learned transposed convolution with kernel = stride = hop:
      y_t = frame_{t // hop} W_{t mod hop} + b (C = `channels`);
    * `mode="repeat"`: y_t = frame_{t // hop} (C = D).

    Sample t depends on frame t // hop only, so `step(frame, index)` computes one sample's
    features from the current frame and the phase `index mod hop`.
    """

    def __init__(self, hop, frame_dim, channels=None, mode="transposed", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("transposed", "repeat"):
            raise ValueError(
                f"`local_upsample` must be 'transposed' or 'repeat'; received {mode!r}.")
        self.hop = int(hop)
        self.frame_dim = int(frame_dim)
        self.mode = mode
        self.channels = int(channels or frame_dim) if mode == "transposed" else self.frame_dim
        if self.hop < 1:
            raise ValueError(f"`local_hop` must be >= 1; received {hop}.")

    def build(self, input_shape=None):
        if self.mode == "transposed":
            self.kernel = self.add_weight(
                name="kernel", shape=(self.frame_dim, self.hop * self.channels),
                initializer="glorot_uniform")
            self.bias = self.add_weight(name="bias", shape=(self.channels,),
                                        initializer="zeros")

    def call(self, frames):
        batch, num_frames = tf.shape(frames)[0], tf.shape(frames)[1]
        if self.mode == "repeat":
            # expand_dims, not frames[:, :, None]: TFLite has no kernel for a strided slice
            # that inserts an axis
            tiled = tf.tile(tf.expand_dims(frames, 2), [1, 1, self.hop, 1])  # (B, F, hop, D)
            return tf.reshape(tiled, [batch, num_frames * self.hop, self.frame_dim])
        y = tf.matmul(frames, tf.cast(self.kernel, frames.dtype))  # (B, F, hop * C)
        y = tf.reshape(y, [batch, num_frames * self.hop, self.channels])
        return y + tf.cast(self.bias, y.dtype)

    def step(self, frame, index):
        """frame [B, D] (frame index // hop), index int32 [B] -> [B, C]."""
        if self.mode == "repeat":
            return frame
        y = tf.reshape(tf.matmul(frame, tf.cast(self.kernel, frame.dtype)),
                       [-1, self.hop, self.channels])  # (B, hop, C)
        phase = tf.math.floormod(index, self.hop)
        mask = tf.expand_dims(tf.equal(tf.range(self.hop)[None, :], phase[:, None]), -1)
        y = tf.reduce_sum(tf.where(mask, y, tf.zeros_like(y)), axis=1)
        return y + tf.cast(self.bias, y.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(hop=self.hop, frame_dim=self.frame_dim,
                      channels=self.channels if self.mode == "transposed" else None,
                      mode=self.mode)
        return config
