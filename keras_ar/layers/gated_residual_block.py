"""WaveNet's gated residual block (van den Oord et al. 2016, sec. 2.3-2.5)."""

import keras
import tensorflow as tf

from keras_ar.layers.causal_conv1d import CausalConv1D


@keras.saving.register_keras_serializable(package="keras_ar")
class GatedResidualBlock(keras.layers.Layer):
    """z = tanh(W_f * h + V_f c) . sigmoid(W_g * h + V_g c);  h' = h + W_r z;  skip = W_s z.

    `*` is a causal dilated convolution (`CausalConv1D`), `c` the conditioning features
    (global, upsampled local and context features concatenated by the model) projected by a
    1x1 convolution. Inputs: h `[B, T, residual_channels]`, c `[B, T, D_c]` or None.
    The block's state is its convolution's FIFO buffer. The last block of a stack feeds only
    the skip path: `use_residual=False` drops W_r (and returns h unchanged).
    """

    def __init__(self, residual_channels, skip_channels, kernel_size=2, dilation_rate=1,
                 use_condition=False, use_residual=True, **kwargs):
        super().__init__(**kwargs)
        self.residual_channels = int(residual_channels)
        self.skip_channels = int(skip_channels)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.use_condition = bool(use_condition)
        self.use_residual = bool(use_residual)
        self.conv = CausalConv1D(2 * self.residual_channels, self.kernel_size,
                                 self.dilation_rate, name="dilated_conv")
        self.condition_proj = (keras.layers.Dense(2 * self.residual_channels, use_bias=False,
                                                  name="condition_proj")
                               if self.use_condition else None)
        self.residual_proj = (keras.layers.Dense(self.residual_channels, name="residual_proj")
                              if self.use_residual else None)
        self.skip_proj = keras.layers.Dense(self.skip_channels, name="skip_proj")

    @property
    def buffer_length(self):
        return self.conv.buffer_length

    def build(self, input_shape, condition_shape=None):
        self.conv.build(input_shape)
        if self.condition_proj is not None:
            if condition_shape is None:
                raise ValueError("A conditioned GatedResidualBlock needs `condition_shape`.")
            self.condition_proj.build(condition_shape)
        gate_shape = tuple(input_shape[:-1]) + (self.residual_channels,)
        if self.residual_proj is not None:
            self.residual_proj.build(gate_shape)
        self.skip_proj.build(gate_shape)

    def _gate(self, pre, condition):
        if self.condition_proj is not None:
            pre = pre + self.condition_proj(condition)
        filt, gate = tf.split(pre, 2, axis=-1)
        return tf.tanh(filt) * tf.sigmoid(gate)

    def call(self, h, condition=None, buffer=None):
        """Parallel pass; returns (h_out, skip, new_buffer)."""
        if buffer is None:
            pre = self.conv(h)
            new_buffer = None
        else:
            pre, new_buffer = self.conv.call_with_buffer(h, buffer)
        z = self._gate(pre, condition)
        return self._residual(h, z), self.skip_proj(z), new_buffer

    def step(self, h_t, condition_t, buffer):
        """One position: h_t [B, R], condition_t [B, D_c] or None -> (h_out, skip, buffer)."""
        h_out, z, new_buffer = self.gate_step(h_t, condition_t, buffer)
        return h_out, self.skip_proj(z), new_buffer

    def gate_step(self, h_t, condition_t, buffer):
        """`step` returning the gate z [B, R] instead of skip = W_s z (the model applies the
        skip projections of all blocks as one matmul: `WaveNet._fused_skip`)."""
        pre, new_buffer = self.conv.step(h_t, buffer)
        z = self._gate(pre, condition_t)
        return self._residual(h_t, z), z, new_buffer

    def step_from_taps(self, h_t, condition_t, taps):
        """`step` with the convolution's past taps given (`CausalConv1D.past_taps`' row for
        this position; or [B, K, ...] runs of positions) -> (h_out, skip); the buffer is the
        caller's to advance."""
        h_out, z = self.gate_step_from_taps(h_t, condition_t, taps)
        return h_out, self.skip_proj(z)

    def gate_step_from_taps(self, h_t, condition_t, taps):
        """`step_from_taps` returning the gate z instead of the skip."""
        z = self._gate(self.conv.step_from_taps(h_t, taps), condition_t)
        return self._residual(h_t, z), z

    def _residual(self, h, z):
        return h if self.residual_proj is None else h + self.residual_proj(z)

    def get_config(self):
        config = super().get_config()
        config.update(
            residual_channels=self.residual_channels, skip_channels=self.skip_channels,
            kernel_size=self.kernel_size, dilation_rate=self.dilation_rate,
            use_condition=self.use_condition, use_residual=self.use_residual)
        return config
