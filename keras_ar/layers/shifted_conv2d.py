"""Down- and down-right-shifted convolutions (PixelCNN++, Salimans et al. 2017, sec. 2.4)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_ar")
class ShiftedConv2D(keras.layers.Layer):
    """A convolution whose output (i, j) sees only rows <= i (and, down-right, cols <= j).

    * `shift="down"`, kernel `(kh, kw)` (kw odd): input zero-padded kh - 1 rows on top and
      (kw - 1) / 2 columns each side, VALID: output (i, j) sees rows i-kh+1..i, cols
      j-(kw-1)/2..j+(kw-1)/2.
    * `shift="down_right"`: padded kh - 1 on top and kw - 1 on the left: rows i-kh+1..i, cols
      j-kw+1..j.
    * `strides=2` subsamples; `transpose=True` is the matching upsampling (a VALID transposed
      convolution cropped as in the reference implementation), which keeps the same causal
      direction.

    `row_step(window)` computes one output row from the kh input rows it sees,
    `[B, kh, W, C]` -> `[B, W, filters]` (stride 1, used for row caches).

    `masked_rows = m` (stride 1, not transposed) stores a `(kh + m, kw)` kernel whose last m
    rows are masked out: the rows below the output's own, which a causal image model may
    not see. They never reach the output (zero gradient) and are not computed; they are
    initialised with the kernel (the initializer sees the whole kernel's fan-in) and held,
    and counted by `count_params`, like `MaskedConv2D`'s masked taps: a Gated
    PixelCNN's vertical n x n kernel (van den Oord et al. 2016, fig. 2) is `(n // 2 + 1,
    n)` live rows with `masked_rows = n // 2`.
    """

    def __init__(self, filters, kernel_size=(2, 3), shift="down", strides=1, transpose=False,
                 kernel_initializer="glorot_uniform", masked_rows=0, **kwargs):
        super().__init__(**kwargs)
        if shift not in ("down", "down_right"):
            raise ValueError(f"`shift` must be 'down' or 'down_right'; received {shift!r}.")
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        if shift == "down" and self.kernel_size[1] % 2 == 0:
            raise ValueError(f"A 'down' kernel needs an odd width; received {kernel_size}.")
        self.shift = shift
        self.strides = int(strides)
        self.transpose = bool(transpose)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.masked_rows = int(masked_rows)
        if self.masked_rows < 0 or (self.masked_rows and (self.transpose or self.strides > 1)):
            raise ValueError(f"`masked_rows` must be >= 0, and 0 for strided or transposed "
                             f"convolutions; received {masked_rows} (strides={strides}, "
                             f"transpose={transpose}).")

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        stored = (self.kernel_size[0] + self.masked_rows, self.kernel_size[1])
        shape = (stored + (self.filters, in_channels) if self.transpose
                 else stored + (in_channels, self.filters))
        self.kernel = self.add_weight(name="kernel", shape=shape,
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def _horizontal_pad(self):
        kw = self.kernel_size[1]
        return [(kw - 1) // 2] * 2 if self.shift == "down" else [kw - 1, 0]

    def live_kernel(self):
        """The kernel's rows that reach the output, `(kh, kw, C, filters)`."""
        return self.kernel[:self.kernel_size[0]] if self.masked_rows else self.kernel

    def call(self, x):
        kernel = tf.cast(self.live_kernel(), x.dtype)
        kh, kw = self.kernel_size
        if self.transpose:
            shape = tf.shape(x)
            s = self.strides
            # The reference asks for in * s + k - 1; the last s - 1 rows/cols of that are
            # zero and cropped, so the natural (in - 1) * s + k (which ONNX accepts) is used.
            out_shape = tf.stack([shape[0], (shape[1] - 1) * s + kh, (shape[2] - 1) * s + kw,
                                  self.filters])
            y = tf.nn.conv2d_transpose(x, kernel, out_shape, strides=s, padding="VALID")
            left = (kw - 1) // 2 if self.shift == "down" else 0
            y = y[:, :shape[1] * s, left:left + shape[2] * s, :]
        else:
            x = tf.pad(x, [[0, 0], [kh - 1, 0], self._horizontal_pad(), [0, 0]])
            y = tf.nn.conv2d(x, kernel, strides=self.strides, padding="VALID")
        return y + tf.cast(self.bias, y.dtype)

    def row_step(self, window, weights=None):
        """window `[B, kh, W, C]` (rows i-kh+1..i) -> output row i `[B, W, filters]`.

        Written as static column slices and one matmul (no convolution), with `weights`
        (kernel, bias) optionally read outside a `tf.cond` branch that calls this: ONNX
        converters cannot convert a convolution whose kernel enters an `If` from outside."""
        kernel, bias = weights if weights is not None else (self.live_kernel(), self.bias)
        kh, kw = self.kernel_size
        width = window.shape[2]
        x = tf.pad(window, [[0, 0], [0, 0], self._horizontal_pad(), [0, 0]])
        x = tf.transpose(x, [0, 2, 1, 3])  # (B, W + kw - 1, kh, C)
        taps = tf.stack([x[:, c:c + width] for c in range(kw)], axis=3)  # (B, W, kh, kw, C)
        flat = tf.reshape(taps, [-1, width, kh * kw * int(kernel.shape[2])])
        y = tf.matmul(flat, tf.reshape(tf.cast(kernel, x.dtype), [-1, self.filters]))
        return y + tf.cast(bias, y.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size, shift=self.shift,
            strides=self.strides, transpose=self.transpose, masked_rows=self.masked_rows,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
