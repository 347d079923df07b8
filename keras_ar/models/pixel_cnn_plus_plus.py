"""PixelCNN++ (Salimans et al. 2017, arXiv 1701.05517) on the step protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_ar.heads import DiscretizedLogisticMixtureHead
from keras_ar.layers.shifted_conv2d import ShiftedConv2D
from keras_ar.models import generation
from keras_ar.models import pixel_cnn_plus_plus_cache as cache
from keras_ar.models.image_model import ImageAutoregressiveModel, refuse_local_condition

concat_elu = cache.concat_elu


def _shift(x, axis):
    pad = [[0, 0]] * 4
    pad[axis] = [1, 0]
    size = tf.shape(x)[axis]
    return tf.gather(tf.pad(x, pad), tf.range(size), axis=axis)


class _GatedResnet(keras.layers.Layer):
    """x + a * sigmoid(b), [a, b] = conv2(dropout(concat_elu(conv1(concat_elu(x))
    + nin(concat_elu(aux))))) + W h (sec. 2.4 of the paper; the reference's gated_resnet)."""

    def __init__(self, filters, kernel_size, shift, aux_channels=0, condition_dim=0,
                 dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = ShiftedConv2D(filters, kernel_size, shift, name="conv1")
        self.conv1.build((None, None, None, 2 * filters))
        self.conv2 = ShiftedConv2D(2 * filters, kernel_size, shift, name="conv2")
        self.conv2.build((None, None, None, 2 * filters))
        self.nin = None
        if aux_channels:
            self.nin = keras.layers.Dense(filters, name="nin")
            self.nin.build((None, None, None, 2 * aux_channels))
        self.condition = None
        if condition_dim:
            self.condition = keras.layers.Dense(2 * filters, use_bias=False, name="condition")
            self.condition.build((None, condition_dim))
        self.dropout = keras.layers.Dropout(dropout)
        self.built = True

    def call(self, x, aux=None, h=None, training=False):
        c1 = self.conv1(concat_elu(x))
        if self.nin is not None:
            c1 = c1 + self.nin(concat_elu(aux))
        c2 = self.conv2(self.dropout(concat_elu(c1), training=training))
        if self.condition is not None:
            c2 = c2 + self.condition(h)[:, None, None, :]
        a, b = tf.split(c2, 2, axis=-1)
        return x + a * tf.sigmoid(b)


@keras.saving.register_keras_serializable(package="keras_ar")
class PixelCNNPlusPlus(ImageAutoregressiveModel):
    """PixelCNN++: discretized logistic mixture over two shifted streams with a U-net.

    x (levels) -> y in [-1, 1] plus a channel of ones (to tell the image from the padding);
    u = down_shift(conv_2x3(y)) sees the rows above; ul = down_shift(conv_1x3(y)) +
    right_shift(conv_2x1^{down-right}(y)) sees the rows above and the pixels to the left.
    Up pass: per scale `num_layers` gated resnets (concat_elu, dropout, class conditioning
    W h), ul's taking u as auxiliary input, then stride-2 shifted convolutions to the next
    scale (`num_scales` scales); down pass: the mirror with stride-2 shifted transposed
    convolutions and the up-pass activations as shortcut inputs (u <- u_skip; ul <- [u,
    ul_skip]). params = NiN(elu(ul)) -> the reference layout of
    `DiscretizedLogisticMixtureHead(num_mixtures, C, num_levels)`. Every path is shifted,
    so the params of a pixel depend on no channel of that pixel: the RGB coupling lives in
    the head, and `step` is exact for C = 3 too.

    H and W must be divisible by 2 ** (num_scales - 1).

    Generation cache (row caches per layer and scale, Fast PixelCNN++-style; the code is in
    `pixel_cnn_plus_plus_cache.py`). Scale s is the grid H_s x W_s = H/2^s x W/2^s; at raster
    step p = (r, c) its current row is r_s = r // 2^s and column c_s = c // 2^s. Every
    activation the network computes (the init convolutions, each gated resnet's conv1 output
    c1 = conv1(ce(x)) [+ nin(ce(aux))] and output x + a sigmoid(b), the stride-2 down- and
    up-sampled tensors; ce = concat_elu) is a node; its state is

    * `<node>_cur`: `[B, W_s, F]`, the node's values on row r_s of its grid (columns not yet
      computed hold stale values of the row before and are never read);
    * `<node>_prev`: `[B, W_s, F]`, row r_s - 1 (zeros above the image), kept for nodes a
      2-row convolution reads; moved from `_cur` at fine (r, 0) when r % 2^s == 0;
    * `y_rows`: `[B, 2, W, C + 1]`, image rows r - 2, r - 1 as [2x/(L-1) - 1, 1] (zeros above
      the image: the padding indicator), `y_row`: `[B, W, C + 1]`, row r up to column c - 1.

    A step first writes x_prev into `y_row`, then evaluates the nodes in the order of the
    parallel pass, reading neighbours from the caches and blending its results into `_cur`
    (`tf.where`):

    * the u (rows-above) stream a whole row at a time: at the first pixel of a fine row r
      (inside one `tf.cond`, TFLite's IF / ONNX's If), every u node of a scale s with
      r % 2^s == 0 computes its row r_s from the rows above, all of which are known then
      (pads, strided slices and one matmul per convolution);
    * the ul (down-right) stream at one location per scale: (r_s, c_s), written only when
      r % 2^s == 0 and c % 2^s == 0, the raster step at which that coarse location becomes
      computable (on other steps the few matmuls are discarded); it reads other columns
      with batched gathers and writes with a select against a column mask.

    So a row of W steps costs one u pass over the row (sum over u nodes of W_s columns) plus
    W ul steps of one column per ul node: per pixel, nothing depends on H or W but the
    column-mask selects of the writes (O(W) memory, no arithmetic; `step_cost()`). The
    previous design computed a window of u columns on every step instead (no branch), and
    recomputed up to the whole row per step once the receptive field spans the row.
    `params(p) = NiN(elu(ul_final(r, c)))` equals `model(inputs)` at p. `prefill` is a loop
    of `step` (from any index).

    Args:
        image_shape: (height, width, channels), channels 1 or 3; height and width divisible
            by 2 ** (num_scales - 1). Default (32, 32, 3).
        num_levels: int. Levels L per channel (pixels are ints in [0, L)). Default 256.
        num_mixtures: int. Logistic mixture components per pixel. Default 5.
        num_layers: int. Gated resnets per scale in each pass (up and down). Default 2.
        filters: int. Feature channels of every stream. Default 32.
        num_scales: int >= 1. Resolutions of the U-net (stride-2 steps between them).
            Default 3.
        dropout: float. Dropout rate inside the gated resnets (training only). Default 0.5.
        num_global_classes: int. > 0: `global_condition` is int32 `[B]` class ids in
            [0, num_global_classes), embedded (h of W h). Default 0: no conditioning.
        global_condition_dim: int. > 0: `global_condition` is a float `[B, dim]` vector
            (exclusive with `num_global_classes`). Default 0.
        global_embedding_dim: int. Size of the class embedding. Default 16.
        **kwargs: Passed to `AutoregressiveModel` (`metadata`, `name`, ...); a nonzero
            `local_condition_dim` is refused (use `GatedPixelCNN`).

    Example:

    >>> import numpy as np
    >>> from keras_ar.models import PixelCNNPlusPlus
    >>> model = PixelCNNPlusPlus(image_shape=(4, 4, 3), num_levels=8, num_mixtures=2,
    ...                          num_layers=1, filters=4, num_scales=2)
    >>> images = np.zeros([1, 4, 4, 3], np.int32)
    >>> tuple(model(images).shape), tuple(model.log_prob(images).shape)
    ((1, 4, 4, 20), (1,))
    >>> out = model.generate(batch_size=1, num_steps=4, seed=0)
    >>> tuple(out["x"].shape), tuple(model.decode(out["x"]).shape)
    ((1, 4, 3), (1, 4, 4, 3))

    References:
        - Salimans et al., "PixelCNN++: Improving the PixelCNN with Discretized Logistic
          Mixture Likelihood and Other Modifications", 2017, arXiv 1701.05517.
        - van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", 2016,
          arXiv 1606.05328 (gated units, the shifted streams without a blind spot).
        - Ramachandran et al., "Fast Generation for Convolutional Autoregressive Models",
          2017, arXiv 1704.06001 (Fast PixelCNN++: the row caches of `step`).
    """

    def __init__(self, image_shape: Sequence[int] = (32, 32, 3), num_levels: int = 256,
                 num_mixtures: int = 5, num_layers: int = 2, filters: int = 32,
                 num_scales: int = 3, dropout: float = 0.5, num_global_classes: int = 0,
                 global_condition_dim: int = 0, global_embedding_dim: int = 16,
                 **kwargs: Any) -> None:
        refuse_local_condition("PixelCNNPlusPlus", kwargs)
        super().__init__(
            head=DiscretizedLogisticMixtureHead(int(num_mixtures), int(image_shape[-1]),
                                                int(num_levels), name="head"),
            image_shape=image_shape, num_levels=num_levels,
            num_global_classes=num_global_classes, global_condition_dim=global_condition_dim,
            global_embedding_dim=global_embedding_dim, **kwargs)
        self.num_mixtures = int(num_mixtures)
        self.num_layers = int(num_layers)
        self.filters = int(filters)
        self.num_scales = int(num_scales)
        self.dropout = float(dropout)
        factor = 2 ** (self.num_scales - 1)
        if self.num_scales < 1 or self.height % factor or self.width % factor:
            raise ValueError(
                f"image height and width must be divisible by 2 ** (num_scales - 1) = "
                f"{factor}; received image_shape={self.image_shape}, num_scales={num_scales}.")
        self._make_layers()
        self._plan, self._final = cache.build_plan(self)

    def _conv(self, kernel, shift, name, in_dim, **kwargs):
        layer = ShiftedConv2D(self.filters, kernel, shift, name=name, **kwargs)
        layer.build((None, None, None, in_dim))
        return layer

    def _resnets(self, prefix, count, u_aux, ul_aux):
        f, cond = self.filters, self.global_feature_dim
        u = [_GatedResnet(f, (2, 3), "down", u_aux, cond, self.dropout, name=f"{prefix}_u_{i}")
             for i in range(count)]
        ul = [_GatedResnet(f, (2, 2), "down_right", ul_aux, cond, self.dropout,
                           name=f"{prefix}_ul_{i}") for i in range(count)]
        return u, ul

    def _make_layers(self):
        f, c = self.filters, self.channels + 1
        self.init_u = self._conv((2, 3), "down", "init_u", c)
        self.init_ul_down = self._conv((1, 3), "down", "init_ul_down", c)
        self.init_ul_right = self._conv((2, 1), "down_right", "init_ul_right", c)
        self.up_blocks, self.down_blocks, self.downsample, self.upsample = [], [], [], []
        for s in range(self.num_scales):
            self.up_blocks.append(self._resnets(f"up{s}", self.num_layers, 0, f))
            if s + 1 < self.num_scales:
                self.downsample.append((
                    self._conv((2, 3), "down", f"down{s}_u", f, strides=2),
                    self._conv((2, 2), "down_right", f"down{s}_ul", f, strides=2)))
        for s in range(self.num_scales):
            count = self.num_layers + (0 if s == 0 else 1)
            self.down_blocks.append(self._resnets(f"dn{s}", count, f, 2 * f))
            if s + 1 < self.num_scales:
                self.upsample.append((
                    self._conv((2, 3), "down", f"up{s}_u", f, strides=2, transpose=True),
                    self._conv((2, 2), "down_right", f"up{s}_ul", f, strides=2,
                               transpose=True)))
        self.output_params = keras.layers.Dense(self.head.num_params, name="output_params")
        self.output_params.build((None, None, None, f))
        self.built = True

    def _forward(self, feats, conditions, training=False):
        h = self.global_features(conditions)
        y = tf.concat([feats, tf.ones_like(feats[..., :1])], axis=-1)
        u_list = [_shift(self.init_u(y), 1)]
        ul_list = [_shift(self.init_ul_down(y), 1) + _shift(self.init_ul_right(y), 2)]
        for s, (u_blocks, ul_blocks) in enumerate(self.up_blocks):
            for u_block, ul_block in zip(u_blocks, ul_blocks):
                u_list.append(u_block(u_list[-1], h=h, training=training))
                ul_list.append(ul_block(ul_list[-1], u_list[-1], h, training=training))
            if s + 1 < self.num_scales:
                u_list.append(self.downsample[s][0](u_list[-1]))
                ul_list.append(self.downsample[s][1](ul_list[-1]))
        u, ul = u_list.pop(), ul_list.pop()
        for s, (u_blocks, ul_blocks) in enumerate(self.down_blocks):
            if s > 0:
                u = self.upsample[s - 1][0](u)
                ul = self.upsample[s - 1][1](ul)
            for u_block, ul_block in zip(u_blocks, ul_blocks):
                u = u_block(u, u_list.pop(), h, training=training)
                ul = ul_block(ul, tf.concat([u, ul_list.pop()], axis=-1), h, training=training)
        return self.output_params(tf.nn.elu(ul)), {}, None

    # ----------------------------------------------------------------- step protocol
    def _fifo_layers(self):
        return {}

    def _extra_state_spec(self, batch_size):
        return cache.state_spec(self, batch_size)

    def _step(self, x_prev, state, conditions):
        return cache.step(self, self.features(x_prev), state,
                          self.global_features(conditions))

    def _prefill(self, x_prefix, state, conditions):
        """A loop of `step` (each location computed once, as when sampling)."""
        return generation.scan_prefill(self, x_prefix, state, conditions)

    def step_cost(self) -> dict[str, float]:
        """{"columns": columns evaluated per step summed over cached nodes, "macs":
        multiply-adds of the convolutions per step and image (excluding O(W) cache
        reads/writes)}, averaged over a row (the u stream's row pass at its first pixel
        computes sum_s W_s columns per u node of scale s); independent of H and W."""
        columns = macs = 0.0
        for node in self._plan:
            n = 1.0 if node.stream == "ul" else (self.width >> node.scale) / self.width
            columns += n
            macs += n * _node_macs(self, node)
        return {"columns": columns, "macs": macs}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_levels=self.num_levels, num_mixtures=self.num_mixtures,
            num_layers=self.num_layers, filters=self.filters, num_scales=self.num_scales,
            dropout=self.dropout)
        return config


def _node_macs(model, node):
    """Multiply-adds of one column of `node` (its convolutions and 1 x 1 layers)."""
    layers = {"init_u": [model.init_u], "init_ul": [model.init_ul_down, model.init_ul_right],
              "c1": [node.layer.conv1] if node.op == "c1" else [],
              "c2": [node.layer.conv2] if node.op == "c2" else [],
              "down": [node.layer], "up": [node.layer]}[node.op]
    macs = sum(int(tf.size(layer.kernel)) for layer in layers)
    if node.op == "up":  # one kernel row per output row
        macs //= node.layer.kernel_size[0]
    if node.op == "c1" and node.layer.nin is not None:
        macs += int(tf.size(node.layer.nin.kernel))
    return macs
