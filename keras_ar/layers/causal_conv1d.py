"""Causal dilated 1-D convolution with an explicit FIFO state."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_ar")
class CausalConv1D(keras.layers.Layer):
    """y_t = b + sum_{j<k} W_j x_{t - (k-1-j) d}: output t sees inputs <= t only.

    The layer carries its left context explicitly, as a FIFO `buffer` of the last
    `buffer_length = dilation_rate * (kernel_size - 1)` inputs, `[B, buffer_length, C_in]`.
    A zero buffer equals Keras' `padding="causal"`.

    * `call(x, buffer=None)` -> y `[B, T, filters]` (parallel, teacher forcing);
    * `call_with_buffer(x, buffer)` -> (y, new_buffer): the parallel pass over `x` continuing
      from `buffer` (prefill);
    * `step(x_t, buffer)` -> (y_t `[B, filters]`, new_buffer): one position in O(k) taps
      (concat + slice, which converts to TFLite and ONNX);
    * `past_taps(buffer, chunk)` + `step_from_taps(x_t, taps)`: the chunked generation
      loop's form of `step` when `dilation_rate >= chunk`: the past taps of the next `chunk`
      positions all lie in `buffer`, so their products are computed for all of them at once.
    """

    def __init__(self, filters, kernel_size=2, dilation_rate=1, use_bias=True,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if self.kernel_size < 1 or self.dilation_rate < 1:
            raise ValueError(
                f"kernel_size and dilation_rate must be >= 1; received {kernel_size}, "
                f"{dilation_rate}.")

    @property
    def buffer_length(self):
        return self.dilation_rate * (self.kernel_size - 1)

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, in_channels, self.filters),
            initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)

    def _conv_valid(self, x):
        kernel = tf.cast(self.kernel, x.dtype)
        y = tf.nn.convolution(x, kernel, padding="VALID", dilations=[self.dilation_rate])
        if self.bias is not None:
            y = y + tf.cast(self.bias, y.dtype)
        return y

    def call(self, x, buffer=None):
        if self.buffer_length == 0:
            return self._conv_valid(x)
        if buffer is None:
            x_full = tf.pad(x, [[0, 0], [self.buffer_length, 0], [0, 0]])
        else:
            x_full = tf.concat([tf.cast(buffer, x.dtype), x], axis=1)
        return self._conv_valid(x_full)

    def call_with_buffer(self, x, buffer):
        if self.buffer_length == 0:
            return self._conv_valid(x), buffer
        x_full = tf.concat([tf.cast(buffer, x.dtype), x], axis=1)  # (B, L + T, C)
        return self._conv_valid(x_full), x_full[:, -self.buffer_length:]

    def step(self, x_t, buffer):
        kernel = tf.cast(self.kernel, x_t.dtype)
        if self.buffer_length == 0:
            y = tf.matmul(x_t, kernel[0])
            new_buffer = buffer
        else:
            window = tf.concat([tf.cast(buffer, x_t.dtype), tf.expand_dims(x_t, 1)], axis=1)
            # (B, L + 1, C_in). The taps are gathered: TFLite runs a slice with a stride
            # other than 1 element by element, outside XNNPACK (its slowest data movement).
            taps = window if self.dilation_rate == 1 else tf.gather(
                window, list(range(0, self.buffer_length + 1, self.dilation_rate)), axis=1)
            flat = tf.reshape(taps, [-1, self.kernel_size * kernel.shape[1]])
            y = tf.matmul(flat, tf.reshape(kernel, [-1, self.filters]))
            new_buffer = window[:, 1:, :]
        if self.bias is not None:
            y = y + tf.cast(self.bias, y.dtype)
        return y, new_buffer

    def past_taps(self, buffer, chunk):
        """b + sum_{m>=1} W_{k-1-m} x_{t0+j-m d} for j < chunk -> [B, chunk, filters], where
        `buffer` holds inputs t0 - L .. t0 - 1 (row p is input t0 - L + p)."""
        if self.buffer_length == 0 or self.dilation_rate < chunk:
            raise ValueError(f"past_taps needs dilation_rate >= chunk > 0 and a buffer; "
                             f"received dilation_rate={self.dilation_rate}, chunk={chunk}, "
                             f"kernel_size={self.kernel_size}.")
        kernel = tf.cast(self.kernel, buffer.dtype)
        in_channels = kernel.shape[1]
        y = 0.0
        for m in range(1, self.kernel_size):
            start = self.buffer_length - m * self.dilation_rate
            rows = tf.reshape(buffer[:, start:start + chunk], [-1, in_channels])  # (B*K, C)
            y = y + tf.matmul(rows, kernel[self.kernel_size - 1 - m])
        if self.bias is not None:
            y = y + tf.cast(self.bias, y.dtype)
        return tf.reshape(y, [-1, chunk, self.filters])  # (B, K, F)

    def step_from_taps(self, x_t, taps):
        """`step`'s output from the current input and `past_taps`' row for this step;
        x_t [B, C_in] with taps [B, F], or a run of positions x [B, K, C_in], taps [B, K, F]."""
        kernel = tf.cast(self.kernel[self.kernel_size - 1], x_t.dtype)
        if x_t.shape.rank == 3:
            flat = tf.reshape(x_t, [-1, kernel.shape[0]])  # (B*K, C_in)
            y = tf.reshape(tf.matmul(flat, kernel), tf.shape(taps))
        else:
            y = tf.matmul(x_t, kernel)
        return y + tf.cast(taps, x_t.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size,
            dilation_rate=self.dilation_rate, use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
