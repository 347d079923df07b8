"""Shared machinery of the image models: raster order, validation, cached step, prefill."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_ar import contract
from keras_ar.heads.distribution_head import DistributionHead
from keras_ar.models import generation
from keras_ar.models.api_types import Conditions, Inputs, State, TensorLike
from keras_ar.models.autoregressive_model import AutoregressiveModel
from keras_ar.ops import validation

LOCAL_PREV = "local_prev"


@keras.saving.register_keras_serializable(package="keras_ar")
class ImageAutoregressiveModel(AutoregressiveModel):
    """p(x) = prod_{i,j} p(x_ij | x_<ij, c) over pixels in raster order (row by row).

    `x` is int32 `[B, H, W, C]` in [0, num_levels); `model(inputs)` returns params
    `[B, H, W, P]`; generation runs over the `H * W` pixels, `to_sequence` gives
    `[B, H * W, C]` (raster order) and `decode` turns generated `[B, H * W, C]` back into
    images `[B, H, W, C]`. A step's `x_prev` is the previous pixel `[B, C]`; the first step's
    `x_prev` (`start_id = 0`) is never read (it sits at raster position -1, masked like the
    zero padding). The network sees pixels as floats 2 x / (L - 1) - 1.

    Cache (subclasses): each masked convolution keeps a FIFO of its inputs at the last
    `(kh // 2) * W + kw // 2` raster positions (`fifo_<k>: [B, L, C_in]`), so a step costs
    O(layers * taps) matmuls whatever H x W (plus O(W) copies of the FIFOs).

    Channels of one pixel (C = 3, categorical models): the network factorises R, G, B with
    colour masks, so features at pixel p depend on x_p's earlier channels. Then the model
    is *lagged*: `step(x_{p-1})` first re-runs pixel p-1 with its now known value to push
    the exact inputs into the FIFOs, then runs pixel p with x_p unknown (zeros) without
    pushing. The returned params of channel 0 equal `model(inputs)` at p; those of later
    channels assume x_p = 0 and are not the teacher-forced ones. `sample_step` is exact: it
    samples R, then G, then B, re-running only pixel p's part of the network each time, and
    returns params equal to `model(inputs)` at p given the sampled pixel. With C = 1 (or
    models whose params at p depend on no channel of p) `step` is exact.

    Conditions: `global_condition` int32 `[B]` class ids (`num_global_classes`) or float
    `[B, global_condition_dim]`; `local_condition` float `[B, H, W, local_condition_dim]`
    (per step: the current pixel's features `[B, local_condition_dim]`, picked by
    `step_conditions`).

    `prefill` from index 0 is one parallel pass over the image with the unknown pixels set
    to zero, whose layer inputs fill the caches; from another index it scans `step`.
    """

    scores_lengths = False  # every pixel is scored: an image has no length

    def __init__(self, head: DistributionHead, image_shape: Sequence[int], num_levels: int,
                 num_global_classes: int = 0, global_condition_dim: int = 0,
                 global_embedding_dim: int = 16, local_condition_dim: int = 0,
                 **kwargs: Any) -> None:
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or image_shape[2] not in (1, 3) or min(image_shape) < 1:
            raise ValueError(
                f"`image_shape` must be (height, width, channels) with channels 1 or 3; "
                f"received {image_shape}.")
        if num_global_classes and global_condition_dim:
            raise ValueError("Use either `num_global_classes` (ids) or `global_condition_dim` "
                             "(vectors), not both.")
        super().__init__(head=head, start_id=0, **kwargs)
        self.image_shape = image_shape
        self.num_levels = int(num_levels)
        self.num_global_classes = int(num_global_classes)
        self.global_condition_dim = int(global_condition_dim)
        self.global_embedding_dim = int(global_embedding_dim)
        self.local_condition_dim = int(local_condition_dim)
        self.global_embedding = (
            keras.layers.Embedding(self.num_global_classes, self.global_embedding_dim,
                                   name="global_embedding")
            if self.num_global_classes else None)
        if self.global_embedding is not None:
            self.global_embedding.build((None,))

    # ----------------------------------------------------------------- shapes
    @property
    def height(self) -> int:
        return self.image_shape[0]

    @property
    def width(self) -> int:
        return self.image_shape[1]

    @property
    def channels(self) -> int:
        return self.image_shape[2]

    @property
    def num_pixels(self) -> int:
        return self.height * self.width

    @property
    def global_feature_dim(self) -> int:
        return self.global_embedding_dim if self.num_global_classes else self.global_condition_dim

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.channels,)

    @property
    def lagged(self) -> bool:
        """True when features at a pixel depend on that pixel's channels (see class doc)."""
        return False

    def to_sequence(self, x: TensorLike) -> tf.Tensor:
        x = tf.convert_to_tensor(x)
        return tf.reshape(x, [tf.shape(x)[0], self.num_pixels, self.channels])  # (B, HW, C)

    def params_to_sequence(self, params: TensorLike) -> tf.Tensor:
        params = tf.convert_to_tensor(params)
        return tf.reshape(params, [tf.shape(params)[0], self.num_pixels, -1])  # (B, HW, P)

    def decode(self, x: TensorLike) -> tf.Tensor:
        """Generated pixels `[B, T, C]` (T <= H * W, raster order) -> images `[B, H, W, C]`
        (int32 levels); a partial generation (T < H * W) leaves the later pixels at 0."""
        x = tf.convert_to_tensor(x)
        missing = tf.maximum(self.num_pixels - tf.shape(x)[1], 0)
        x = tf.pad(x, [[0, 0], [0, missing], [0, 0]])  # (B, H * W, C)
        return tf.reshape(x, [tf.shape(x)[0], self.height, self.width, self.channels])

    def features(self, x: TensorLike) -> tf.Tensor:
        """Levels -> network inputs in [-1, 1]."""
        return 2.0 * tf.cast(x, tf.float32) / (self.num_levels - 1) - 1.0

    def build(self, input_shape: Any = None) -> None:
        self.built = True

    # ----------------------------------------------------------------- validation
    def _validate_image(self, x, name=contract.X):
        x = tf.convert_to_tensor(x)
        validation.check_rank(x, 4, name, "[batch, height, width, channels] pixel levels")
        for axis, size in enumerate(self.image_shape, start=1):
            validation.check_dim(x, axis, size, name, f"[batch, {self.height}, {self.width}, "
                                 f"{self.channels}]; image_shape={self.image_shape}")
        validation.check_integer(x, name)
        return tf.cast(validation.check_ids_in_range(x, self.num_levels, name), tf.int32)

    def _check_input_values(self, inputs):
        self._validate_image(inputs[contract.X])
        self._validate_conditions(
            {k: inputs[k] for k in contract.CONDITION_KEYS if k in inputs})

    def _validate_x(self, x, name, allow_start=False):
        x = tf.convert_to_tensor(x)
        validation.check_rank(x, 3, name, "[batch, pixels in raster order, channels]")
        validation.check_dim(x, 2, self.channels, name, "[batch, pixels, channels]")
        if x.shape[1] is not None and x.shape[1] > self.num_pixels:
            raise ValueError(f"`{name}` has {x.shape[1]} pixels; an image has only "
                             f"{self.num_pixels} ({self.image_shape}).")
        validation.check_integer(x, name)
        return tf.cast(validation.check_ids_in_range(x, self.num_levels, name), tf.int32)

    def _validate_conditions(self, conditions, per_step=False):
        allowed = set()
        if self.num_global_classes or self.global_condition_dim:
            allowed.add(contract.GLOBAL_CONDITION)
        if self.local_condition_dim:
            allowed.add(contract.LOCAL_CONDITION)
        unexpected = sorted(set(conditions) - allowed)
        if unexpected:
            raise ValueError(
                f"This {type(self).__name__} takes no {unexpected} (configured conditions: "
                f"{sorted(allowed)}). Set num_global_classes/global_condition_dim or "
                "local_condition_dim to use them.")
        missing = sorted(allowed - set(conditions))
        if missing:
            raise ValueError(f"This {type(self).__name__} requires conditions {missing}; "
                             f"received only {sorted(conditions)}.")
        out = {}
        if contract.GLOBAL_CONDITION in conditions:
            out[contract.GLOBAL_CONDITION] = self._validate_global(
                conditions[contract.GLOBAL_CONDITION])
        if contract.LOCAL_CONDITION in conditions:
            name, dim = contract.LOCAL_CONDITION, self.local_condition_dim
            local = tf.convert_to_tensor(conditions[name])
            if per_step:
                validation.check_rank(local, 2, name, "[batch, local_condition_dim]: the "
                                      "current pixel's features")
                validation.check_dim(local, 1, dim, name, "[batch, local_condition_dim]")
            else:
                layout = f"[batch, {self.height}, {self.width}, {dim}]"
                validation.check_rank(local, 4, name, layout)
                for axis, size in enumerate((self.height, self.width, dim), start=1):
                    validation.check_dim(local, axis, size, name, layout)
            validation.check_float(local, name)
            validation.check_finite(local, name)
            out[name] = tf.cast(local, tf.float32)
        return out

    def _validate_global(self, value):
        return validation.check_global_condition(
            value, self.num_global_classes, self.global_condition_dim)

    def x_spec(self) -> tf.TensorSpec:
        """`inputs["x"]` is a batch of whole images: `[B, H, W, C]` int32 levels."""
        return tf.TensorSpec([None, *self.image_shape], self.x_dtype, contract.X)

    def condition_specs(self, per_step: bool = False) -> dict[str, tf.TensorSpec]:
        """global ids `[B]` int32 or vectors `[B, global_condition_dim]`; local features
        `[B, H, W, local_condition_dim]` whole, `[B, local_condition_dim]` per step."""
        specs = {}
        if self.num_global_classes:
            specs[contract.GLOBAL_CONDITION] = tf.TensorSpec([None], tf.int32)
        elif self.global_condition_dim:
            specs[contract.GLOBAL_CONDITION] = tf.TensorSpec(
                [None, self.global_condition_dim], tf.float32)
        if self.local_condition_dim:
            grid = [] if per_step else [self.height, self.width]
            specs[contract.LOCAL_CONDITION] = tf.TensorSpec(
                [None, *grid, self.local_condition_dim], tf.float32)
        return {name: tf.TensorSpec(spec.shape, spec.dtype, name)
                for name, spec in specs.items()}

    def global_features(self, conditions: Conditions) -> tf.Tensor | None:
        """[B, global_feature_dim] or None."""
        g = conditions.get(contract.GLOBAL_CONDITION)
        if g is None:
            return None
        return self.global_embedding(g) if self.global_embedding is not None else g

    def step_conditions(self, conditions: Conditions, state: State) -> Conditions:
        local = conditions.get(contract.LOCAL_CONDITION) if conditions else None
        if local is None:
            return conditions
        local = tf.convert_to_tensor(local, tf.float32)
        flat = tf.reshape(local, [tf.shape(local)[0], self.num_pixels, -1])  # (B, HW, D)
        out = dict(conditions)
        out[contract.LOCAL_CONDITION] = _select(flat, state[contract.INDEX_KEY])
        return out

    # ----------------------------------------------------------------- subclass hooks
    def _fifo_layers(self):
        """{state key: masked conv layer} whose inputs are cached (fifo_length > 0 only)."""
        raise NotImplementedError

    def _forward(self, feats, conditions, training=False):
        """Parallel pass: (params [B,H,W,P], {fifo key: layer input [B,H,W,C_in]}, extras)."""
        raise NotImplementedError

    def _pixel(self, state, x_cur, index, cond):
        """All layers at raster position `index` [B]; x_cur `[B, C]` features of the pixel
        (zeros where unknown). Returns (params [B, P], {fifo key: new fifo})."""
        raise NotImplementedError

    def _row_update(self, state, x_prev_feats, index, cond):
        """Row-granular caches (vertical stacks); default none."""
        return {}

    def _extra_state_spec(self, batch_size):
        return {}

    def _extra_prefill_state(self, feats, extras, last):
        return {}

    # ----------------------------------------------------------------- step protocol
    def call(self, inputs: Inputs, training: bool = False) -> tf.Tensor:
        inputs = self._as_inputs(inputs)
        x = self._validate_image(inputs[contract.X])
        conditions = self._validate_conditions(
            {k: inputs[k] for k in contract.CONDITION_KEYS if k in inputs})
        params, _, _ = self._forward(self.features(x), conditions, training=training)
        return params

    def _state_spec(self, batch_size):
        spec = {key: tf.TensorSpec(
            [batch_size, layer.fifo_length(self.width), int(layer.kernel.shape[2])], tf.float32)
            for key, layer in self._fifo_layers().items()}
        spec.update(self._extra_state_spec(batch_size))
        if self.lagged and self.local_condition_dim:
            spec[LOCAL_PREV] = tf.TensorSpec([batch_size, self.local_condition_dim], tf.float32)
        return spec

    def _init_state(self, batch_size, conditions):
        return {key: tf.zeros([batch_size] + spec.shape[1:].as_list(), spec.dtype)
                for key, spec in self._state_spec(None).items()}

    def _cond(self, conditions, local=None):
        return {"global": self.global_features(conditions),
                "local": conditions.get(contract.LOCAL_CONDITION) if local is None else local}

    def _step(self, x_prev, state, conditions):
        index = state[contract.INDEX_KEY]
        x_prev = self.features(x_prev)  # (B, C)
        state = dict(state)
        cond = self._cond(conditions)
        if self.lagged:
            prev_cond = self._cond(conditions, state.get(LOCAL_PREV))
            _, pushed = self._pixel(state, x_prev, index - 1, prev_cond)
            state.update(pushed)
            if self.local_condition_dim:
                state[LOCAL_PREV] = cond["local"]
        else:
            state["fifo_0"] = _write_last(state["fifo_0"], x_prev, index > 0)
        state.update(self._row_update(state, x_prev, index, cond))
        params, pushed = self._pixel(state, tf.zeros_like(x_prev), index, cond)
        if not self.lagged:
            state.update(pushed)
        state.pop(contract.INDEX_KEY)
        return params, state

    def sample_step(self, x_prev: TensorLike, state: State, noise: TensorLike,
                    temperature: TensorLike = 1.0, top_k: TensorLike = 0,
                    top_p: TensorLike = 1.0,
                    conditions: Conditions = None) -> tuple[tf.Tensor, tf.Tensor, State]:
        """As `AutoregressiveModel.sample_step`; lagged models (see the class doc) sample
        the pixel's channels in turn, and return the params given the sampled pixel."""
        if not self.lagged:
            return super().sample_step(x_prev, state, noise, temperature, top_k, top_p,
                                       conditions)
        _, new_state = self.step(x_prev, state, conditions)  # pushes pixel p - 1
        conditions = self._validate_conditions(
            {k: v for k, v in (conditions or {}).items() if v is not None}, per_step=True)
        cond = self._cond(conditions)
        index = state[contract.INDEX_KEY]
        noise = tf.convert_to_tensor(noise, tf.float32)
        controls = generation.broadcast_controls(tf.shape(noise)[0], temperature, top_k, top_p)
        known = tf.zeros([tf.shape(noise)[0], self.channels], tf.int32)
        for channel in range(self.channels):
            mask = tf.constant(np.arange(self.channels) < channel)[None, :]
            x_cur = tf.where(mask, self.features(known), tf.zeros_like(self.features(known)))
            params, _ = self._pixel(new_state, x_cur, index, cond)
            drawn = self.head.sample(params, noise, *controls)
            known = tf.where(tf.equal(tf.range(self.channels), channel)[None, :], drawn, known)
        return known, params, new_state

    def _prefill(self, x_prefix, state, conditions):
        at_start = tf.reduce_all(tf.equal(state[contract.INDEX_KEY], 0))
        return tf.cond(
            at_start, lambda: self._parallel_prefill(x_prefix, conditions),
            lambda: generation.scan_prefill(self, x_prefix, state, conditions))

    def _parallel_prefill(self, x_prefix, conditions):
        batch, length = tf.shape(x_prefix)[0], tf.shape(x_prefix)[1]
        known = x_prefix[:, 1:]  # x_0 .. x_{T-2}  (B, T-1, C)
        pad = self.num_pixels - (length - 1)
        feats = tf.pad(self.features(known), [[0, 0], [0, pad], [0, 0]])  # (B, HW, C)
        feats = tf.reshape(feats, [batch, self.height, self.width, self.channels])
        params, inputs, extras = self._forward(feats, conditions)
        params = self.params_to_sequence(params)[:, :length]
        last = length - 2 if self.lagged else length - 1  # last position in the FIFOs
        state = {}
        for key, layer in self._fifo_layers().items():
            flat = tf.reshape(inputs[key], [batch, self.num_pixels, -1])
            positions = last - layer.fifo_length(self.width) + 1 + tf.range(
                layer.fifo_length(self.width))
            state[key] = _gather_positions(flat, positions)
        state.update(self._extra_prefill_state(feats, extras, length - 1))
        if self.lagged and self.local_condition_dim:
            local = tf.reshape(conditions[contract.LOCAL_CONDITION],
                               [batch, self.num_pixels, -1])
            state[LOCAL_PREV] = _select(local, tf.fill([batch], length - 1))
        return params, state

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            image_shape=list(self.image_shape), num_global_classes=self.num_global_classes,
            global_condition_dim=self.global_condition_dim,
            global_embedding_dim=self.global_embedding_dim)
        return config


def _select(flat, index):
    """flat [B, N, D], index [B] -> flat[b, index[b]] [B, D] by an equality mask."""
    mask = tf.equal(tf.range(tf.shape(flat)[1])[None, :], tf.cast(index, tf.int32)[:, None])
    return tf.reduce_sum(tf.where(mask[:, :, None], flat, tf.zeros_like(flat)), axis=1)


def _write_last(fifo, value, write):
    """Replace the FIFO's last slot (raster position index - 1) with `value` where `write`."""
    last = tf.where(write[:, None], value, fifo[:, -1])
    return tf.concat([fifo[:, :-1], last[:, None]], axis=1)


def _gather_positions(flat, positions):
    """flat [B, N, C] at raster `positions` [L] (zeros before position 0) -> [B, L, C]."""
    values = tf.gather(flat, tf.maximum(positions, 0), axis=1)
    return tf.where((positions >= 0)[None, :, None], values, tf.zeros_like(values))


def refuse_local_condition(name: str, kwargs: dict[str, Any]) -> None:
    """For image families without a local-conditioning path: refuse a nonzero
    `local_condition_dim` in `kwargs` instead of ignoring it (drops a zero one)."""
    if kwargs.get("local_condition_dim"):
        raise ValueError(
            f"{name} does not take local conditioning (received local_condition_dim="
            f"{kwargs['local_condition_dim']}); use GatedPixelCNN, whose layers add a "
            "per-pixel `local_condition` [B, H, W, d], or drop the argument.")
    kwargs.pop("local_condition_dim", None)
