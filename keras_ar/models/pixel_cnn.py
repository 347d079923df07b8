"""PixelCNN (van den Oord et al. 2016, arXiv 1601.06759) with per-layer raster caches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_ar.heads import CategoricalHead
from keras_ar.layers.masked_conv2d import MaskedConv2D
from keras_ar.models.image_model import ImageAutoregressiveModel, refuse_local_condition


@keras.saving.register_keras_serializable(package="keras_ar")
class PixelCNN(ImageAutoregressiveModel):
    """Masked-convolution PixelCNN: p(x_ij,c | x_<ij, x_ij,<c, g) = softmax over num_levels.

    h_0 = MaskA_{k0 x k0}(x);  h_l = h_{l-1} + MaskB_{1x1}(relu(MaskB_{k x k}(relu(h_{l-1}))
    + V_l g));  params = MaskB_{1x1}(relu(MaskB_{1x1}(relu(h_L)))) -> C x num_levels logits
    (channel-major, `CategoricalHead(num_levels, num_channels=C)`). With C = 3 every mask
    carries the R -> G -> B colour masks. `g` is the optional global condition (class id
    embedding or vector).

    Generation (see `ImageAutoregressiveModel`): `fifo_0` caches the input pixels for the
    first k0 x k0 convolution, `fifo_<l>` the inputs of block l's k x k convolution; 1x1
    layers need no cache. C = 3 models are lagged (two pixel passes per `step`; `sample_step`
    samples R, G, B in turn).

    Args:
        image_shape: (height, width, channels), channels 1 or 3. Default (28, 28, 1).
        num_levels: int. Levels L per channel: pixels are ints in [0, L), each channel a
            softmax over L. Default 256.
        num_layers: int. Residual blocks after the first convolution. Default 5.
        filters: int. Feature channels of the blocks. Default 32.
        kernel_size: int. k, the blocks' mask B k x k convolutions. Default 3.
        first_kernel_size: int >= 3. k0, the first (mask A) convolution. Default 7.
        output_filters: int or None. Channels of the hidden output 1x1 layer; None
            (default): `filters`.
        num_global_classes: int. > 0: `global_condition` is int32 `[B]` class ids in
            [0, num_global_classes), embedded. Default 0: no class conditioning.
        global_condition_dim: int. > 0: `global_condition` is a float `[B, dim]` vector
            (exclusive with `num_global_classes`). Default 0.
        global_embedding_dim: int. Size of the class embedding. Default 16.
        **kwargs: Passed to `AutoregressiveModel` (`metadata`, `name`, ...); a nonzero
            `local_condition_dim` is refused (use `GatedPixelCNN`).

    Example:

    >>> import numpy as np
    >>> from keras_ar.models import PixelCNN
    >>> model = PixelCNN(image_shape=(4, 4, 1), num_levels=4, num_layers=1, filters=4)
    >>> images = np.zeros([2, 4, 4, 1], np.int32)
    >>> tuple(model(images).shape), tuple(model.log_prob(images).shape)
    ((2, 4, 4, 4), (2,))
    >>> out = model.generate(batch_size=2, num_steps=16, seed=0)
    >>> tuple(out["x"].shape), tuple(model.decode(out["x"]).shape)
    ((2, 16, 1), (2, 4, 4, 1))

    References:
        - van den Oord et al., "Pixel Recurrent Neural Networks", 2016, arXiv 1601.06759
          (PixelCNN, masks A and B, the colour masks).
        - Ramachandran et al., "Fast Generation for Convolutional Autoregressive Models",
          2017, arXiv 1704.06001 (the per-layer caches of `step`).
    """

    def __init__(self, image_shape: Sequence[int] = (28, 28, 1), num_levels: int = 256,
                 num_layers: int = 5, filters: int = 32, kernel_size: int = 3,
                 first_kernel_size: int = 7, output_filters: int | None = None,
                 num_global_classes: int = 0, global_condition_dim: int = 0,
                 global_embedding_dim: int = 16, **kwargs: Any) -> None:
        refuse_local_condition("PixelCNN", kwargs)
        super().__init__(
            head=CategoricalHead(int(num_levels), num_channels=int(image_shape[-1]),
                                 name="head"),
            image_shape=image_shape, num_levels=num_levels,
            num_global_classes=num_global_classes, global_condition_dim=global_condition_dim,
            global_embedding_dim=global_embedding_dim, **kwargs)
        self.num_layers = int(num_layers)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.first_kernel_size = int(first_kernel_size)
        self.output_filters = int(output_filters or filters)
        if self.first_kernel_size < 3:
            raise ValueError(f"`first_kernel_size` must be >= 3; received {first_kernel_size}.")
        self._make_layers()

    @property
    def lagged(self) -> bool:
        return self.channels > 1

    def _make_layers(self):
        c, f = self.channels, self.filters
        self.input_conv = MaskedConv2D(f, self.first_kernel_size, "A", c, name="input_conv")
        self.input_conv.build((None, None, None, c))
        self.block_convs, self.block_projs, self.block_conds = [], [], []
        for i in range(self.num_layers):
            conv = MaskedConv2D(f, self.kernel_size, "B", c, name=f"block_{i}_conv")
            proj = MaskedConv2D(f, 1, "B", c, name=f"block_{i}_proj")
            conv.build((None, None, None, f))
            proj.build((None, None, None, f))
            self.block_convs.append(conv)
            self.block_projs.append(proj)
            if self.global_feature_dim:
                dense = keras.layers.Dense(f, use_bias=False, name=f"block_{i}_condition")
                dense.build((None, self.global_feature_dim))
                self.block_conds.append(dense)
        self.output_hidden = MaskedConv2D(self.output_filters, 1, "B", c, name="output_hidden")
        self.output_hidden.build((None, None, None, f))
        self.output_params = MaskedConv2D(self.head.num_params, 1, "B", c,
                                          num_splits=1, name="output_params")
        self.output_params.build((None, None, None, self.output_filters))
        self.built = True

    def _fifo_layers(self):
        layers = {"fifo_0": self.input_conv}
        for i, conv in enumerate(self.block_convs):
            layers[f"fifo_{i + 1}"] = conv
        return {k: v for k, v in layers.items() if v.fifo_length(self.width) > 0}

    def _bias(self, i, g):
        return 0.0 if g is None else self.block_conds[i](g)  # (B, F)

    def _forward(self, feats, conditions, training=False):
        g = self.global_features(conditions)
        inputs = {"fifo_0": feats}
        h = self.input_conv(feats)
        for i, (conv, proj) in enumerate(zip(self.block_convs, self.block_projs)):
            a = tf.nn.relu(h)
            inputs[f"fifo_{i + 1}"] = a
            bias = self._bias(i, g)
            if g is not None:
                bias = bias[:, None, None, :]
            h = h + proj(tf.nn.relu(conv(a) + bias))
        return self._output(h), inputs, None

    def _output(self, h):
        return self.output_params(tf.nn.relu(self.output_hidden(tf.nn.relu(h))))

    def _pixel(self, state, x_cur, index, cond):
        width, g = self.width, cond["global"]
        fifos = {}
        h, fifos["fifo_0"] = self.input_conv.step(x_cur, state["fifo_0"], index, width)
        for i, (conv, proj) in enumerate(zip(self.block_convs, self.block_projs)):
            key = f"fifo_{i + 1}"
            a = tf.nn.relu(h)
            y, new_fifo = conv.step(a, state.get(key), index, width)
            if key in state:
                fifos[key] = new_fifo
            h = h + proj(tf.nn.relu(y + self._bias(i, g))[:, None, None, :])[:, 0, 0]
        out = self._output(h[:, None, None, :])[:, 0, 0]  # (B, P)
        return out, fifos

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_levels=self.num_levels, num_layers=self.num_layers, filters=self.filters,
            kernel_size=self.kernel_size, first_kernel_size=self.first_kernel_size,
            output_filters=self.output_filters)
        return config
