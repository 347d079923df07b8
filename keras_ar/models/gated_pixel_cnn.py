"""Gated conditional PixelCNN (van den Oord et al. 2016, arXiv 1606.05328) with row caches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_ar import contract
from keras_ar.heads import CategoricalHead
from keras_ar.layers.masked_conv2d import MaskedConv2D
from keras_ar.layers.shifted_conv2d import ShiftedConv2D
from keras_ar.models.image_model import ImageAutoregressiveModel, _select


def _gate(pre):
    filt, gate = tf.split(pre, 2, axis=-1)
    return tf.tanh(filt) * tf.sigmoid(gate)


def _down_shift(x):
    return tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]


@keras.saving.register_keras_serializable(package="keras_ar")
class GatedPixelCNN(ImageAutoregressiveModel):
    """Vertical + horizontal gated stacks; no blind spot; class/vector/spatial conditioning.

    With k = kernel_size (odd >= 3) for layers l >= 2, k = first_kernel_size for l = 1 (a
    wide first layer on the image is cheap and gives the 2016 PixelCNN's 7 x 7 context from
    the start), half = k // 2 and gate(a) = tanh(a_f) * sigmoid(a_g):

    * vertical stack (rows strictly above): v_0 = down_shift(x),
      v_l = r_l v_{l-1} + gate(V_l * v_{l-1} + A_l g), `*` a (half + 1) x k convolution over
      rows i - half .. i (`ShiftedConv2D`, "down"), so v_l at row i sees every column of the
      rows above it within its cone and nothing of row i; r_l = 1 for l >= 2 when
      `vertical_residual` (the default), else 0. Without the residual each gate scales its
      input by ~0.5 at initialisation and the deep layers of the vertical stack start out
      nearly silent (and train slower in the image-quality bench);
    * horizontal stack (current row, left): h_l = h_{l-1} + P_l gate(H_l * h_{l-1}
      + L_l v_l + B_l g + S_l s), `*` a 1 x k masked convolution (mask A for l = 1, where h_0 =
      x and there is no residual; colour masks for C = 3), `s` the optional spatial
      conditioning map at the pixel;
    * params = MaskB_1x1(relu(MaskB_1x1(relu(h_L)))), a softmax over num_levels per channel.

    With `masked_vertical` (the default) V_l is held as the paper's k x k kernel (fig. 2)
    whose `half` rows below the centre are masked: they are not computed and get no
    gradient, and `count_params` counts them as it counts `MaskedConv2D`'s masked taps (and
    as the 2016 baseline and the public implementations count theirs).
    `gate_bias` (default 1) initialises the bias of every gate's sigmoid half, as an LSTM's
    forget gate is started at +1: the gates start 73% open instead of 50%, and the net
    learns faster in short budgets (`bench/image_quality_bench.py`).

    Caches: `fifo_<l>` holds the horizontal convolution's inputs at the last `half` pixels
    (half of that layer's k);
    the vertical stack is computed a whole row at a time when a row starts (one `tf.cond`,
    amortised over the W pixels of the row) from `vrows_<l>` (the last `half` rows of v_l,
    `[B, half, W, C_l]`, v_0 being the previous image rows), `xrow` (the row being generated)
    and `vtop` (the current row of v_L). Per-pixel cost is flat in H x W.

    Args:
        image_shape: (height, width, channels), channels 1 or 3. Default (28, 28, 1).
        num_levels: int. Levels L per channel: pixels are ints in [0, L), each channel a
            softmax over L. Default 256.
        num_layers: int >= 1. Gated layers (a vertical and a horizontal stack each).
            Default 5.
        filters: int. Feature channels of both stacks. Default 32.
        kernel_size: odd int >= 3. k of layers l >= 2. Default 3.
        first_kernel_size: odd int >= 3. k of the first layer. Default 7.
        output_filters: int or None. Channels of the hidden output 1x1 layer; None
            (default): `filters`.
        num_global_classes: int. > 0: `global_condition` is int32 `[B]` class ids in
            [0, num_global_classes), embedded. Default 0: no class conditioning.
        global_condition_dim: int. > 0: `global_condition` is a float `[B, dim]` vector
            (exclusive with `num_global_classes`). Default 0.
        global_embedding_dim: int. Size of the class embedding. Default 16.
        local_condition_dim: int. > 0: `local_condition` float `[B, H, W, dim]`, a spatial
            map added to the horizontal gates (S_l s). Default 0.
        vertical_residual: bool. r_l = 1 (residual vertical stack) for l >= 2. Default True.
        masked_vertical: bool. Hold V_l as the paper's masked k x k kernel (counted by
            `count_params`) rather than a (half + 1) x k one. Default True.
        gate_bias: float. Initial bias of every gate's sigmoid half. Default 1.0.
        **kwargs: Passed to `AutoregressiveModel` (`metadata`, `name`, ...).

    Example:

    A class-conditional model:

    >>> import numpy as np
    >>> from keras_ar.models import GatedPixelCNN
    >>> model = GatedPixelCNN(image_shape=(4, 4, 1), num_levels=4, num_layers=1, filters=4,
    ...                       num_global_classes=3)
    >>> inputs = {"x": np.zeros([2, 4, 4, 1], np.int32), "global_condition": np.array([0, 2])}
    >>> tuple(model(inputs).shape), tuple(model.log_prob(inputs).shape)
    ((2, 4, 4, 4), (2,))
    >>> out = model.generate(batch_size=2, num_steps=16, seed=0,
    ...                      conditions={"global_condition": np.array([0, 2])})
    >>> tuple(out["x"].shape), tuple(model.decode(out["x"]).shape)
    ((2, 16, 1), (2, 4, 4, 1))

    References:
        - van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", 2016,
          arXiv 1606.05328 (gated stacks without a blind spot, conditioning).
        - van den Oord et al., "Pixel Recurrent Neural Networks", 2016, arXiv 1601.06759.
        - Ramachandran et al., "Fast Generation for Convolutional Autoregressive Models",
          2017, arXiv 1704.06001 (the row and pixel caches of `step`).
    """

    def __init__(self, image_shape: Sequence[int] = (28, 28, 1), num_levels: int = 256,
                 num_layers: int = 5, filters: int = 32, kernel_size: int = 3,
                 first_kernel_size: int = 7, output_filters: int | None = None,
                 num_global_classes: int = 0, global_condition_dim: int = 0,
                 global_embedding_dim: int = 16, local_condition_dim: int = 0,
                 vertical_residual: bool = True, masked_vertical: bool = True,
                 gate_bias: float = 1.0, **kwargs: Any) -> None:
        super().__init__(
            head=CategoricalHead(int(num_levels), num_channels=int(image_shape[-1]),
                                 name="head"),
            image_shape=image_shape, num_levels=num_levels,
            num_global_classes=num_global_classes, global_condition_dim=global_condition_dim,
            global_embedding_dim=global_embedding_dim, local_condition_dim=local_condition_dim,
            **kwargs)
        self.num_layers = int(num_layers)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.first_kernel_size = int(first_kernel_size)
        self.output_filters = int(output_filters or filters)
        self.vertical_residual = bool(vertical_residual)
        self.masked_vertical = bool(masked_vertical)
        self.gate_bias = float(gate_bias)
        if (min(self.kernel_size, self.first_kernel_size) < 3 or self.kernel_size % 2 == 0
                or self.first_kernel_size % 2 == 0 or self.num_layers < 1):
            raise ValueError(
                f"Need odd kernel_size and first_kernel_size >= 3 and num_layers >= 1; "
                f"received {kernel_size}, {first_kernel_size}, {num_layers}.")
        self._make_layers()

    @property
    def lagged(self) -> bool:
        return self.channels > 1

    def half(self, i: int) -> int:
        """Rows above (and pixels left) that layer i's convolutions reach."""
        return (self.first_kernel_size if i == 0 else self.kernel_size) // 2

    def _dense(self, units, in_dim, name, use_bias=False):
        layer = keras.layers.Dense(units, use_bias=use_bias, name=name)
        layer.build((None, in_dim))
        return layer

    def _make_layers(self):
        c, f = self.channels, self.filters
        self.v_convs, self.h_convs, self.links, self.h_outs = [], [], [], []
        self.v_conds, self.h_conds, self.h_locals = [], [], []
        for i in range(self.num_layers):
            in_dim, k = (c, self.first_kernel_size) if i == 0 else (f, self.kernel_size)
            v_conv = ShiftedConv2D(2 * f, (self.half(i) + 1, k), "down", name=f"v_conv_{i}",
                                   masked_rows=self.half(i) if self.masked_vertical else 0)
            v_conv.build((None, None, None, in_dim))
            h_conv = MaskedConv2D(2 * f, (1, k), "A" if i == 0 else "B", c, num_splits=2,
                                  name=f"h_conv_{i}")
            h_conv.build((None, None, None, in_dim))
            h_out = MaskedConv2D(f, 1, "B", c, name=f"h_out_{i}")
            h_out.build((None, None, None, f))
            for conv in (v_conv, h_conv):  # the sigmoid halves start at gate_bias
                conv.bias.assign(tf.concat([tf.zeros([f]),
                                            tf.fill([f], self.gate_bias)], axis=0))
            self.v_convs.append(v_conv)
            self.h_convs.append(h_conv)
            self.h_outs.append(h_out)
            self.links.append(self._dense(2 * f, f, f"link_{i}", use_bias=True))
            if self.global_feature_dim:
                self.v_conds.append(self._dense(2 * f, self.global_feature_dim, f"v_cond_{i}"))
                self.h_conds.append(self._dense(2 * f, self.global_feature_dim, f"h_cond_{i}"))
            if self.local_condition_dim:
                self.h_locals.append(self._dense(2 * f, self.local_condition_dim,
                                                 f"h_local_{i}"))
        self.output_hidden = MaskedConv2D(self.output_filters, 1, "B", c, name="output_hidden")
        self.output_hidden.build((None, None, None, f))
        self.output_params = MaskedConv2D(self.head.num_params, 1, "B", c,
                                          name="output_params")
        self.output_params.build((None, None, None, self.output_filters))
        self.built = True

    # ----------------------------------------------------------------- parallel pass
    def _fifo_layers(self):
        return {f"fifo_{i}": conv for i, conv in enumerate(self.h_convs)}

    def _v_bias(self, i, g):
        return 0.0 if g is None else self.v_conds[i](g)

    def _h_bias(self, i, g, local):
        bias = 0.0 if g is None else self.h_conds[i](g)
        if local is not None:
            bias = bias + self.h_locals[i](local)
        return bias

    def _forward(self, feats, conditions, training=False):
        g = self.global_features(conditions)
        local = conditions.get(contract.LOCAL_CONDITION)
        v, h = _down_shift(feats), feats
        vs, inputs = [v], {}
        for i in range(self.num_layers):
            v_bias = self._v_bias(i, g)
            h_bias = 0.0 if g is None else self.h_conds[i](g)[:, None, None, :]
            if g is not None:
                v_bias = v_bias[:, None, None, :]
            if local is not None:
                h_bias = h_bias + self.h_locals[i](local)
            v = self._v_residual(i, v) + _gate(self.v_convs[i](v) + v_bias)
            vs.append(v)
            inputs[f"fifo_{i}"] = h
            out = self.h_outs[i](_gate(self.h_convs[i](h) + self.links[i](v) + h_bias))
            h = out if i == 0 else h + out
        return self._output(h), inputs, vs

    def _output(self, h):
        return self.output_params(tf.nn.relu(self.output_hidden(tf.nn.relu(h))))

    def _v_residual(self, i, v):
        """r_l v_{l-1} of layer i = l - 1 (v_0 has the image's channels: no residual)."""
        return v if (self.vertical_residual and i > 0) else 0.0

    # ----------------------------------------------------------------- caches
    def _extra_state_spec(self, batch_size):
        w, f = self.width, self.filters
        spec = {"xrow": tf.TensorSpec([batch_size, w, self.channels], tf.float32),
                "vtop": tf.TensorSpec([batch_size, w, f], tf.float32)}
        for i in range(self.num_layers):
            dim = self.channels if i == 0 else f
            spec[f"vrows_{i}"] = tf.TensorSpec([batch_size, self.half(i), w, dim], tf.float32)
        return spec

    def _row_update(self, state, x_prev_feats, index, cond):
        width = self.width
        write = tf.logical_and(
            tf.equal(tf.range(width)[None, :], ((index - 1) % width)[:, None]),
            (index > 0)[:, None])
        xrow = tf.where(write[:, :, None], x_prev_feats[:, None, :], state["xrow"])
        start = tf.equal(index % width, 0)
        keys = [f"vrows_{i}" for i in range(self.num_layers)] + ["vtop"]
        old = {key: state[key] for key in keys}
        weights = [(tf.identity(conv.live_kernel()), tf.identity(conv.bias))
                   for conv in self.v_convs]
        biases = [self._v_bias(i, cond["global"]) for i in range(self.num_layers)]

        def burst():
            new, window = {}, tf.concat([state["vrows_0"], xrow[:, None]], axis=1)
            for i, conv in enumerate(self.v_convs):
                bias = biases[i] if cond["global"] is None else biases[i][:, None, :]
                v_row = self._v_residual(i, window[:, -1]) + _gate(
                    conv.row_step(window, weights[i]) + bias)  # (B, W, F)
                new[f"vrows_{i}"] = window[:, 1:]
                if i + 1 < self.num_layers:
                    window = tf.concat([state[f"vrows_{i + 1}"], v_row[:, None]], axis=1)
                else:
                    new["vtop"] = v_row
            return {key: tf.where(tf.reshape(start, [-1] + [1] * (new[key].shape.rank - 1)),
                                  new[key], old[key]) for key in keys}

        updated = dict(tf.cond(tf.reduce_any(start), burst, lambda: old))
        updated["xrow"] = xrow
        return updated

    def _v_row(self, state, i):
        """The current row of v_{i+1}, `[B, W, F]`."""
        return state[f"vrows_{i + 1}"][:, -1] if i + 1 < self.num_layers else state["vtop"]

    def _pixel(self, state, x_cur, index, cond):
        col = index % self.width
        h, fifos = x_cur, {}
        for i in range(self.num_layers):
            key = f"fifo_{i}"
            v_p = _select(self._v_row(state, i), col)  # (B, F)
            y, fifos[key] = self.h_convs[i].step(h, state[key], index, self.width)
            pre = y + self.links[i](v_p) + self._h_bias(i, cond["global"], cond["local"])
            out, _ = self.h_outs[i].step(_gate(pre), None, index, self.width)
            h = out if i == 0 else h + out
        hidden, _ = self.output_hidden.step(tf.nn.relu(h), None, index, self.width)
        params, _ = self.output_params.step(tf.nn.relu(hidden), None, index, self.width)
        return params, fifos

    def _extra_prefill_state(self, feats, vs, last):
        row, col = last // self.width, last % self.width
        state = {}
        for i in range(self.num_layers):
            rows = row - self.half(i) + 1 + tf.range(self.half(i))
            values = tf.gather(vs[i], tf.maximum(rows, 0), axis=1)
            state[f"vrows_{i}"] = tf.where((rows >= 0)[None, :, None, None], values,
                                           tf.zeros_like(values))
        state["vtop"] = tf.gather(vs[-1], row, axis=1)
        current = tf.gather(feats, row, axis=1)
        previous = tf.gather(_down_shift(feats), row, axis=1)
        left = (tf.range(self.width) < col)[None, :, None]
        state["xrow"] = tf.where(left, current, previous)
        return state

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_levels=self.num_levels, num_layers=self.num_layers, filters=self.filters,
            kernel_size=self.kernel_size, first_kernel_size=self.first_kernel_size,
            output_filters=self.output_filters, local_condition_dim=self.local_condition_dim,
            vertical_residual=self.vertical_residual, masked_vertical=self.masked_vertical,
            gate_bias=self.gate_bias)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GatedPixelCNN:
        # Configs saved before these options existed describe models without them.
        old = {"vertical_residual": False, "masked_vertical": False, "gate_bias": 0.0,
               "first_kernel_size": config.get("kernel_size", 3)}
        return super().from_config({**old, **config})
