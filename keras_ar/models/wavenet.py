"""WaveNet (van den Oord et al. 2016, arXiv 1609.03499) with an explicit generation cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_ar import contract
from keras_ar.heads import CategoricalHead, DiscretizedLogisticMixtureHead
from keras_ar.layers import ContextStack, GatedResidualBlock, LocalUpsampler
from keras_ar.models import sequence_conditions, wavenet_chunks
from keras_ar.models.api_types import Conditions, Inputs, State, TensorLike
from keras_ar.models.autoregressive_model import AutoregressiveModel
from keras_ar.ops import linear_decode, mu_law_decode, validation


@keras.saving.register_keras_serializable(package="keras_ar")
class WaveNet(AutoregressiveModel):
    """p(x) = prod_t p(x_t | x_<t, g, l): causal dilated gated stacks over class ids.

    `x` is int32 `[B, T]` in [0, num_classes) (mu-law encoded audio with the defaults). The
    input stream is shifted inside the model: position t sees the embedding of x_{t-1}
    (`start_id = num_classes`, an extra embedding row, at t = 0). Each `GatedResidualBlock`
    adds conditioning V c to its gate, where c concatenates:

    * global: `global_condition` int32 `[B]` speaker ids (`num_global_classes`) embedded to
      `global_embedding_dim`, or a float vector `[B, global_condition_dim]`;
    * local: `local_condition` float `[B, ceil(T / local_hop), local_condition_dim]`,
      upsampled to the sample rate (`LocalUpsampler`, transposed convolution or repetition);
    * context: the optional `ContextStack` over the history pooled by `context_hop`.

    Output: relu(sum of skips) -> 1x1 -> relu -> 1x1 -> head params (256-way categorical by
    default, or a discretized logistic mixture with `head="logistic_mixture"`).

    Generation state: one FIFO buffer per block, `buffer_<i>: [B, dilation*(kernel-1), R]`
    (plus the context stack's), so a step costs O(layers) matmuls whatever the sequence
    length. Step conditions: `global_condition` as in `inputs`; `local_condition` is the frame
    that covers the current step, `[B, local_condition_dim]` (frame index // local_hop;
    `step_conditions` picks it from the whole sequence). `prefill` takes the whole frame
    sequence from position 0 and gathers each row's frames at its own index.

    Args:
        num_classes: int. Values per sample (ids in [0, num_classes)). Default 256.
        dilations: ints. One gated residual block per entry, its dilation. Default 1 .. 512.
        kernel_size: int. Taps of each dilated convolution. Default 2.
        residual_channels: int. R, channels of the residual stream. Default 64.
        skip_channels: int. Channels of the skip connections and output layers. Default 128.
        num_global_classes: int. > 0: `global_condition` is int32 `[B]` ids (speakers),
            embedded. Default 0: no global condition.
        global_condition_dim: int. > 0: `global_condition` is a float `[B, dim]` vector
            (exclusive with `num_global_classes`). Default 0.
        global_embedding_dim: int. Size of the global embedding. Default 16.
        local_condition_dim: int. > 0: `local_condition` float frames
            `[B, ceil(T / local_hop), dim]` (e.g. log-mel). Default 0: none.
        local_hop: int. Samples per local frame. Default 1.
        local_upsample: "transposed" (a learned transposed convolution, the default) or
            "repeat" (each frame repeated `local_hop` times).
        local_channels: int or None. Channels of the transposed upsampler's output; None
            (default): `local_condition_dim`.
        context_hop: int. > 0: add a `ContextStack` over the history average-pooled by this
            many samples. Default 0: none.
        context_dilations: ints. Dilations of the context stack. Default ().
        context_channels: int. Channels of the context stack. Default 32.
        head: "categorical" (a softmax over num_classes, the default) or
            "logistic_mixture" (a discretized logistic mixture over num_classes levels).
        num_mixtures: int. Mixture components of the "logistic_mixture" head. Default 10.
        mu_law: bool. `decode` inverts mu-law (True, the default) or linear quantisation.
        generation_chunk: int >= 0. Inner chunk K of `generate`/`sample_chunk`: blocks with
            dilation >= K keep their FIFOs out of the inner loop; 0: no inner chunks.
            Default 32.
        **kwargs: Passed to `AutoregressiveModel` (`metadata`, `name`, ...).

    Example:

    A speaker-conditioned model:

    >>> import numpy as np
    >>> from keras_ar.models import WaveNet
    >>> model = WaveNet(num_classes=8, dilations=[1, 2], residual_channels=4,
    ...                 skip_channels=4, num_global_classes=2)
    >>> model.receptive_field
    4
    >>> speakers = {"global_condition": np.array([0, 1])}
    >>> x = np.zeros([2, 5], np.int32)
    >>> tuple(model({"x": x, **speakers}).shape), tuple(model.log_prob({"x": x, **speakers}).shape)
    ((2, 5, 8), (2,))
    >>> out = model.generate(batch_size=2, num_steps=3, seed=0, conditions=speakers)
    >>> tuple(out["x"].shape), model.decode(out["x"]).dtype.name
    ((2, 3), 'float32')

    References:
        - van den Oord et al., "WaveNet: A Generative Model for Raw Audio", 2016,
          arXiv 1609.03499.
        - Paine et al., "Fast Wavenet Generation Algorithm", 2016, arXiv 1611.09482 (the
          per-layer FIFO cache of `step`).
        - Salimans et al., "PixelCNN++", 2017, arXiv 1701.05517, and van den Oord et al.,
          "Parallel WaveNet", 2017, arXiv 1711.10433 (the discretized logistic mixture).
    """

    def __init__(self, num_classes: int = 256,
                 dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
                 kernel_size: int = 2, residual_channels: int = 64, skip_channels: int = 128,
                 num_global_classes: int = 0, global_condition_dim: int = 0,
                 global_embedding_dim: int = 16, local_condition_dim: int = 0,
                 local_hop: int = 1, local_upsample: str = "transposed",
                 local_channels: int | None = None, context_hop: int = 0,
                 context_dilations: Sequence[int] = (), context_channels: int = 32,
                 head: str = "categorical", num_mixtures: int = 10, mu_law: bool = True,
                 generation_chunk: int = 32, **kwargs: Any) -> None:
        if head not in ("categorical", "logistic_mixture"):
            raise ValueError(
                f"`head` must be 'categorical' or 'logistic_mixture'; received {head!r}.")
        if num_global_classes and global_condition_dim:
            raise ValueError("Use either `num_global_classes` (ids) or `global_condition_dim` "
                             "(vectors), not both.")
        head_layer = (CategoricalHead(num_classes, name="head") if head == "categorical" else
                      DiscretizedLogisticMixtureHead(num_mixtures, 1, num_classes, name="head"))
        super().__init__(head=head_layer, start_id=int(num_classes), **kwargs)
        self.num_classes = int(num_classes)
        self.dilations = [int(d) for d in dilations]
        self.kernel_size = int(kernel_size)
        self.residual_channels = int(residual_channels)
        self.skip_channels = int(skip_channels)
        self.num_global_classes = int(num_global_classes)
        self.global_condition_dim = int(global_condition_dim)
        self.global_embedding_dim = int(global_embedding_dim)
        self.local_condition_dim = int(local_condition_dim)
        self.local_hop = int(local_hop)
        self.local_upsample = local_upsample
        self.local_channels = local_channels
        self.context_hop = int(context_hop)
        self.context_dilations = [int(d) for d in context_dilations]
        self.context_channels = int(context_channels)
        self.head_type = head
        self.num_mixtures = int(num_mixtures)
        self.mu_law = bool(mu_law)
        self.generation_chunk = int(generation_chunk)
        if self.generation_chunk < 0:
            raise ValueError(f"`generation_chunk` must be >= 0; received {generation_chunk}.")
        self._make_layers()
        self._build_all()

    # ----------------------------------------------------------------- construction
    def _make_layers(self):
        r = self.residual_channels
        self.embedding = keras.layers.Embedding(self.num_classes + 1, r, name="embedding")
        self.global_embedding = (
            keras.layers.Embedding(self.num_global_classes, self.global_embedding_dim,
                                   name="global_embedding")
            if self.num_global_classes else None)
        self.upsampler = (
            LocalUpsampler(self.local_hop, self.local_condition_dim, self.local_channels,
                           self.local_upsample, name="local_upsampler")
            if self.local_condition_dim else None)
        self.context_stack = (
            ContextStack(self.context_hop, self.context_dilations, r, self.context_channels,
                         self.context_channels, self.kernel_size, name="context_stack")
            if self.context_hop else None)
        self.blocks = [
            GatedResidualBlock(r, self.skip_channels, self.kernel_size, d,
                               use_condition=self.condition_dim > 0,
                               use_residual=i < len(self.dilations) - 1, name=f"block_{i}")
            for i, d in enumerate(self.dilations)]
        self.output_hidden = keras.layers.Dense(self.skip_channels, name="output_hidden")
        self.output_params = keras.layers.Dense(self.head.num_params, name="output_params")

    @property
    def condition_dim(self) -> int:
        dim = self.global_embedding_dim if self.num_global_classes else self.global_condition_dim
        if self.local_condition_dim:
            dim += (self.local_condition_dim if self.local_upsample == "repeat"
                    else int(self.local_channels or self.local_condition_dim))
        if self.context_hop:
            dim += self.context_channels
        return dim

    def _build_all(self):
        r = self.residual_channels
        self.embedding.build((None, None))
        if self.global_embedding is not None:
            self.global_embedding.build((None,))
        if self.upsampler is not None:
            self.upsampler.build()
        if self.context_stack is not None:
            self.context_stack.build()
        for block in self.blocks:
            block.build((None, None, r), (None, None, self.condition_dim))
        self.output_hidden.build((None, None, self.skip_channels))
        self.output_params.build((None, None, self.skip_channels))
        self.built = True

    def build(self, input_shape: Any = None) -> None:
        self.built = True

    @property
    def receptive_field(self) -> int:
        return 1 + sum(d * (self.kernel_size - 1) for d in self.dilations)

    # ----------------------------------------------------------------- conditioning
    def _validate_conditions(self, conditions, per_step=False):
        from keras_ar.models import wavenet_conditions

        return wavenet_conditions.validate(self, conditions, per_step)

    def _global_features(self, conditions):
        g = conditions.get(contract.GLOBAL_CONDITION)
        if g is None:
            return None
        if self.global_embedding is not None:
            return self.global_embedding(g)
        return tf.cast(g, self.compute_dtype)

    def condition_specs(self, per_step: bool = False) -> dict[str, tf.TensorSpec]:
        return sequence_conditions.condition_specs(
            self.num_global_classes, self.global_condition_dim, self.local_condition_dim,
            per_step)

    def check_generation_length(self, conditions: Conditions,
                                total_steps: int | tf.Tensor) -> None:
        """The local frames must cover prompt + generated samples (else steps past the last
        frame would see zeros)."""
        local = conditions.get(contract.LOCAL_CONDITION)
        if local is not None:
            covered = tf.shape(local)[1] * self.local_hop
            validation.check_max(
                total_steps, covered, "total_steps",
                f"`local_condition` frames x local_hop={self.local_hop} must cover the prompt "
                "and the generated samples")

    def step_conditions(self, conditions: Conditions, state: State) -> Conditions:
        frame = state[contract.INDEX_KEY] // self.local_hop
        return sequence_conditions.with_local_frame(conditions, frame)

    def _sequence_condition(self, conditions, u, positions=None):
        """Concatenated condition features [B, T, D_c] for a parallel pass (or None)."""
        parts = []
        length = tf.shape(u)[1]
        g = self._global_features(conditions)
        if g is not None:
            parts.append(tf.tile(tf.cast(g, u.dtype)[:, None, :], [1, length, 1]))
        local = conditions.get(contract.LOCAL_CONDITION)
        if local is not None:
            up = tf.cast(self.upsampler(tf.cast(local, u.dtype)), u.dtype)  # (B, F*hop, C)
            if positions is None:
                parts.append(up[:, :length])
            else:
                parts.append(tf.gather(up, positions, batch_dims=1))
        if self.context_stack is not None:
            parts.append(tf.cast(self.context_stack(u), u.dtype))
        return tf.concat(parts, axis=-1) if parts else None

    # ----------------------------------------------------------------- forward
    def call(self, inputs: Inputs, training: bool = False) -> tf.Tensor:
        inputs = self._as_inputs(inputs)
        x = self._validate_x(inputs[contract.X], contract.X)
        conditions = self._validate_conditions(
            {k: inputs[k] for k in contract.CONDITION_KEYS if k in inputs})
        if contract.LOCAL_CONDITION in conditions:
            from keras_ar.models import wavenet_conditions

            wavenet_conditions.check_local_length(
                self, conditions[contract.LOCAL_CONDITION], x.shape[1])
        start = tf.fill([tf.shape(x)[0], 1], self.start_id)
        u = self.embedding(tf.concat([start, x[:, :-1]], axis=1))  # (B, T, R)
        condition = self._sequence_condition(conditions, u)
        h, skips = u, 0.0
        for block in self.blocks:
            h, skip, _ = block(h, condition)
            skips = skips + skip
        return self._output(skips)

    def _output(self, skips):
        hidden = tf.nn.relu(self.output_hidden(tf.nn.relu(skips)))
        return self.output_params(hidden)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return ()

    def _sample_to_x(self, sample):
        return sample[:, 0] if self.head_type == "logistic_mixture" else sample

    def decode(self, x: TensorLike) -> tf.Tensor:
        """Class ids -> float audio in [-1, 1] (mu-law or linear quantisation)."""
        if self.mu_law:
            return mu_law_decode(x, self.num_classes)
        return linear_decode(x, self.num_classes)

    # ----------------------------------------------------------------- step protocol
    def _state_spec(self, batch_size):
        spec = {f"buffer_{i}": tf.TensorSpec(
            [batch_size, block.buffer_length, self.residual_channels], tf.float32)
            for i, block in enumerate(self.blocks)}
        if self.context_stack is not None:
            spec.update(self.context_stack.state_spec(batch_size))
        return spec

    def _init_state(self, batch_size, conditions):
        return {key: tf.zeros([batch_size] + spec.shape[1:].as_list(), spec.dtype)
                for key, spec in self._state_spec(None).items()}

    def _step(self, x_prev, state, conditions):
        params, new_state, _, _ = self._step_with(x_prev, state, conditions)
        return params, new_state

    def _step_with(self, x_prev, state, conditions, taps=None):
        """One step -> (params, new state, {block index: its input h_t}, condition features
        [B, D_c] or None); blocks named in `taps` ({index: past taps [B, 2R]}) take their
        past from there instead of a buffer (and leave it out of the new state)."""
        taps = taps or {}
        # A plain gather (Keras' lookup adds 3 ops per step to wrap negative ids; x_prev is
        # validated or sampled, never negative).
        u_t = tf.cast(tf.gather(self.embedding.embeddings, tf.cast(x_prev, tf.int32)),
                      self.embedding.compute_dtype)  # (B, R)
        index = state[contract.INDEX_KEY]
        new_state = {}
        parts = []
        g = self._global_features(conditions)
        if g is not None:
            parts.append(tf.cast(g, u_t.dtype))
        if self.upsampler is not None:
            frame = tf.cast(conditions[contract.LOCAL_CONDITION], u_t.dtype)
            parts.append(tf.cast(self.upsampler.step(frame, index), u_t.dtype))
        if self.context_stack is not None:
            ctx_state = {k: state[k] for k in self.context_stack.state_spec(None)}
            feature, ctx_new = self.context_stack.step(u_t, ctx_state, index)
            parts.append(tf.cast(feature, u_t.dtype))
            new_state.update(ctx_new)
        condition = tf.concat(parts, axis=-1) if parts else None
        h, gates, inputs = u_t, [], {}
        for i, block in enumerate(self.blocks):
            if i in taps:
                inputs[i] = h
                h, z = block.gate_step_from_taps(h, condition, taps[i])
            else:
                h, z, buffer = block.gate_step(h, condition, state[f"buffer_{i}"])
                new_state[f"buffer_{i}"] = tf.cast(buffer, tf.float32)
            gates.append(z)
        return self._output(self._fused_skip(gates)), new_state, inputs, condition

    def _fused_skip(self, gates):
        """sum_l (W_s,l z_l + b_s,l) as one matmul over the concatenated gates [B, L * R]:
        2 ops in an exported step instead of 2L (the same sum, in another order)."""
        dtype = gates[0].dtype
        kernel = tf.concat([tf.cast(b.skip_proj.kernel, dtype) for b in self.blocks], axis=0)
        bias = tf.add_n([tf.cast(b.skip_proj.bias, dtype) for b in self.blocks])
        return tf.matmul(tf.concat(gates, axis=-1), kernel) + bias  # (B, S)

    # ----------------------------------------------------------------- generation
    def _chunked_blocks(self):
        return wavenet_chunks.chunked_blocks(self)

    def _multi_step(self):
        """Inner chunks of `generation_chunk` steps that keep the FIFOs of the blocks with
        dilation >= generation_chunk out of the inner loop (`wavenet_chunks`), or None."""
        return wavenet_chunks.Body(self) if self._chunked_blocks() else None

    def _prefill(self, x_prefix, state, conditions):
        if self.context_stack is not None:
            return super()._prefill(x_prefix, state, conditions)
        u = self.embedding(tf.cast(x_prefix, tf.int32))  # (B, T, R)
        length = tf.shape(u)[1]
        positions = state[contract.INDEX_KEY][:, None] + tf.range(length)[None, :]
        condition = self._sequence_condition(conditions, u, positions)
        h, skips, new_state = u, 0.0, {}
        for i, block in enumerate(self.blocks):
            h, skip, buffer = block(h, condition, buffer=state[f"buffer_{i}"])
            new_state[f"buffer_{i}"] = tf.cast(buffer, tf.float32)
            skips = skips + skip
        return self._output(skips), new_state

    # ----------------------------------------------------------------- validation
    def _validate_x(self, x, name, allow_start=False):
        x = tf.convert_to_tensor(x)
        validation.check_rank(x, 2, name, "[batch, time] class ids")
        validation.check_integer(x, name)
        limit = self.num_classes + (1 if allow_start else 0)
        return tf.cast(validation.check_ids_in_range(x, limit, name), tf.int32)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, dilations=self.dilations,
            kernel_size=self.kernel_size, residual_channels=self.residual_channels,
            skip_channels=self.skip_channels, num_global_classes=self.num_global_classes,
            global_condition_dim=self.global_condition_dim,
            global_embedding_dim=self.global_embedding_dim,
            local_condition_dim=self.local_condition_dim, local_hop=self.local_hop,
            local_upsample=self.local_upsample, local_channels=self.local_channels,
            context_hop=self.context_hop, context_dilations=self.context_dilations,
            context_channels=self.context_channels, head=self.head_type,
            num_mixtures=self.num_mixtures, mu_law=self.mu_law,
            generation_chunk=self.generation_chunk)
        return config
