"""Masked 2-D convolution (PixelCNN, van den Oord et al. 2016, arXiv 1601.06759, sec. 3.4)."""

import keras
import numpy as np
import tensorflow as tf


def channel_groups(size, num_channels, num_splits=1):
    """Colour group of each of `size` feature channels: `num_splits` equal parts (e.g. the
    tanh and sigmoid halves of a gate), each cut into `num_channels` contiguous groups."""
    per = size // num_splits
    return (np.arange(size) % per) * num_channels // per


@keras.saving.register_keras_serializable(package="keras_ar")
class MaskedConv2D(keras.layers.Layer):
    """y = conv2d(x, W * M) + b with a constant raster-order mask M (never written into W).

    Kernel `(kh, kw)` (odd sizes), centre `(kh // 2, kw // 2)`. M keeps every row above the
    centre, the centre row left of the centre, and at the centre the colour mask: with
    `num_channels = C` colour groups (R, G, B sub-pixel order), output group g sees input
    group g' iff g' < g (mask "A", first layer) or g' <= g (mask "B"). Feature channels are
    assigned to groups contiguously (`channel_groups`); `num_splits` repeats the grouping over
    equal output parts, so the tanh and sigmoid halves of a gate line up. With C = 1, mask A
    drops the centre and mask B keeps it.

    Output (i, j) thus depends on inputs at raster positions < (i, j), plus the centre's
    allowed groups. For generation the layer carries its left context explicitly: `step`
    takes the layer's input at the current pixel and a FIFO of its inputs at the previous
    `fifo_length(width) = (kh // 2) * width + kw // 2` raster positions (`[B, L, C_in]`), and
    returns the output at that pixel and the shifted FIFO (concat + static slice + gather of
    static taps; taps outside the image are zeroed from `index`, as the zero padding does).
    """

    def __init__(self, filters, kernel_size=3, mask_type="B", num_channels=1, num_splits=1,
                 use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.kernel_size = tuple(int(k) for k in size)
        if len(self.kernel_size) != 2 or any(k < 1 or k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"`kernel_size` must be odd (int or pair); received {kernel_size}.")
        if mask_type not in ("A", "B"):
            raise ValueError(f"`mask_type` must be 'A' or 'B'; received {mask_type!r}.")
        self.filters = int(filters)
        self.mask_type = mask_type
        self.num_channels = int(num_channels)
        self.num_splits = int(num_splits)
        if self.filters % self.num_splits or self.filters // self.num_splits < self.num_channels:
            raise ValueError(
                f"`filters` ({filters}) must split into {num_splits} equal parts of at least "
                f"num_channels={num_channels} channels each.")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        if in_channels < self.num_channels:
            raise ValueError(
                f"MaskedConv2D with num_channels={self.num_channels} colour groups needs at "
                f"least that many input channels; received {in_channels}.")
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_size + (in_channels, self.filters),
            initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)
        self.mask = self._make_mask(in_channels)
        self._taps = [(r, c) for r in range(self.kernel_size[0])
                      for c in range(self.kernel_size[1]) if self.mask[r, c].any()]

    def _make_mask(self, in_channels):
        kh, kw = self.kernel_size
        ch, cw = kh // 2, kw // 2
        mask = np.zeros((kh, kw, in_channels, self.filters), np.float32)
        mask[:ch] = 1.0
        mask[ch, :cw] = 1.0
        g_in = channel_groups(in_channels, self.num_channels)
        g_out = channel_groups(self.filters, self.num_channels, self.num_splits)
        if self.mask_type == "A":
            mask[ch, cw] = g_in[:, None] < g_out[None, :]
        else:
            mask[ch, cw] = g_in[:, None] <= g_out[None, :]
        return mask

    def masked_kernel(self, dtype=tf.float32):
        return tf.cast(self.kernel, dtype) * tf.constant(self.mask, dtype)

    def call(self, x):
        """The masked convolution computed over its live taps only (same values as
        `conv2d(x, W * M, "SAME")`): rows below the centre are all masked, so a kernel of
        kh > 1 rows runs as its top `kh // 2 + 1` rows over the input padded on top (6 of
        9 taps for 3 x 3: ~1.8x faster to train); a one-row kernel drops the masked
        columns right of the centre. Dead weights stay in `kernel` (their gradient is 0)."""
        kh, kw = self.kernel_size
        ch, cw = kh // 2, kw // 2
        kernel = self.masked_kernel(x.dtype)
        if ch:
            kernel = kernel[:ch + 1]  # (ch + 1, kw, C_in, F)
            padding = [[0, 0], [ch, 0], [cw, cw], [0, 0]]
        else:
            kernel = kernel[:, :cw + 1]  # (1, cw + 1, C_in, F)
            padding = [[0, 0], [0, 0], [cw, 0], [0, 0]]
        if ch or cw:
            x = tf.pad(x, padding)
        y = tf.nn.conv2d(x, kernel, strides=1, padding="VALID")
        if self.bias is not None:
            y = y + tf.cast(self.bias, y.dtype)
        return y

    def fifo_length(self, width):
        return (self.kernel_size[0] // 2) * int(width) + self.kernel_size[1] // 2

    def step(self, x_t, fifo, index, width):
        """x_t `[B, C_in]` at raster position `index` `[B]`; fifo `[B, L, C_in]` holds the
        inputs at positions index - L .. index - 1. Returns (y_t `[B, filters]`, new fifo)."""
        width = int(width)
        length = self.fifo_length(width)
        ch, cw = self.kernel_size[0] // 2, self.kernel_size[1] // 2
        window = (tf.concat([tf.cast(fifo, x_t.dtype), x_t[:, None, :]], axis=1)
                  if length else x_t[:, None, :])  # (B, L + 1, C_in)
        offsets = [(r - ch, c - cw) for r, c in self._taps]
        taps = tf.gather(window, [length + dr * width + dc for dr, dc in offsets], axis=1)
        index = tf.cast(index, tf.int32)
        row, col = (index // width)[:, None], (index % width)[:, None]
        d_row = tf.constant([dr for dr, _ in offsets], tf.int32)[None, :]
        d_col = tf.constant([dc for _, dc in offsets], tf.int32)[None, :]
        valid = ((row + d_row >= 0) & (col + d_col >= 0) & (col + d_col < width))  # (B, n)
        taps = tf.where(valid[:, :, None], taps, tf.zeros_like(taps))
        kernel = tf.gather_nd(self.masked_kernel(x_t.dtype), [[r, c] for r, c in self._taps])
        flat = tf.reshape(taps, [-1, len(self._taps) * int(kernel.shape[1])])
        y = tf.matmul(flat, tf.reshape(kernel, [-1, self.filters]))
        if self.bias is not None:
            y = y + tf.cast(self.bias, y.dtype)
        return y, (window[:, 1:] if length else fifo)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size, mask_type=self.mask_type,
            num_channels=self.num_channels, num_splits=self.num_splits, use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
