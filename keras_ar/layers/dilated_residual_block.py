"""A non-causal dilated gated residual block (the source encoder of ByteNet)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_ar")
class DilatedResidualBlock(keras.layers.Layer):
    """z = tanh(W_f * h) . sigmoid(W_g * h);  h' = (h + W_r z) . m.

    `*` is a dilated convolution centred on each position (non-causal: output t sees inputs
    t - floor((k-1)/2) d .. t + ceil((k-1)/2) d), zero-padded at both ends; `m` `[B, T, 1]`
    (optional) zeroes positions past each row's length, so with zeros there at the input a
    row's outputs equal the block run on exactly its own length. Inputs h
    `[B, T, channels]`; W_r is a 1x1 projection. A source encoder has no generation state.
    """

    def __init__(self, channels, kernel_size=3, dilation_rate=1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        if self.channels < 1 or self.kernel_size < 1 or self.dilation_rate < 1:
            raise ValueError(
                "channels, kernel_size and dilation_rate must be >= 1; received "
                f"{channels}, {kernel_size}, {dilation_rate}.")
        self.residual_proj = keras.layers.Dense(self.channels, name="residual_proj")

    @property
    def padding(self):
        """(left, right) zero padding of the time axis: `(k-1) d` split, left first."""
        total = (self.kernel_size - 1) * self.dilation_rate
        return total // 2, total - total // 2

    def build(self, input_shape=None):
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, self.channels, 2 * self.channels),
            initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(2 * self.channels,),
                                    initializer="zeros")
        self.residual_proj.build((None, None, self.channels))
        self.built = True

    def call(self, h, mask=None):
        """h [B, T, C], mask [B, T, 1] float (1 inside the row) or None -> [B, T, C]."""
        left, right = self.padding
        padded = tf.pad(h, [[0, 0], [left, right], [0, 0]])  # (B, T + (k-1) d, C)
        pre = tf.nn.convolution(padded, tf.cast(self.kernel, h.dtype), padding="VALID",
                                dilations=[self.dilation_rate])
        filt, gate = tf.split(pre + tf.cast(self.bias, h.dtype), 2, axis=-1)
        out = h + self.residual_proj(tf.tanh(filt) * tf.sigmoid(gate))
        return out if mask is None else out * tf.cast(mask, out.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, kernel_size=self.kernel_size,
                      dilation_rate=self.dilation_rate)
        return config
