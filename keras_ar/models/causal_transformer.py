"""A decoder-only (optionally cross-attending) Transformer with an explicit key/value cache."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_ar import contract
from keras_ar.heads import CategoricalHead
from keras_ar.layers.transformer_block import TransformerBlock
from keras_ar.models import causal_transformer_conditions as conds
from keras_ar.models.api_types import Conditions, Inputs, State
from keras_ar.models.autoregressive_model import AutoregressiveModel
from keras_ar.models.causal_transformer_args import check_args
from keras_ar.ops import validation

_NEG_INF = -1e9


def sinusoidal_table(length: int, dim: int) -> np.ndarray:
    """P[p, 2i] = sin(p / 10000^(2i/dim)), P[p, 2i+1] = cos(p / 10000^(2i/dim)); [length, dim]."""
    positions = np.arange(length, dtype=np.float64)[:, None]
    rates = 1.0 / np.power(10000.0, np.arange(0, dim, 2, dtype=np.float64) / dim)
    table = np.zeros((length, dim), np.float64)
    table[:, 0::2] = np.sin(positions * rates)
    table[:, 1::2] = np.cos(positions * rates[: dim // 2])
    return table.astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_ar")
class CausalTransformer(AutoregressiveModel):
    """p(x) = prod_t p(x_t | x_<t, g, m): pre-norm causal Transformer decoder over token ids.

    `x` is int32 `[B, T]` in [0, vocab_size), T <= max_length. Position t sees the tokens
    before it: the input stream is [start, x_0, ..., x_{T-2}] (`start_id = vocab_size`, an
    extra embedding row). With e = token embedding, P = learned or sinusoidal positions and
    g = the global condition's features (class ids `[B]` embedded, or a vector
    `[B, global_condition_dim]` projected to hidden_dim; added to every position):

        h_0[t] = e(x_{t-1}) + P[t] + g;   h_l = TransformerBlock_l(h_{l-1});
        params[t] = W LayerNorm(h_L[t]) + b   (logits of a CategoricalHead(vocab_size)).

    Blocks: causal self-attention, optional cross-attention to an encoder memory
    `local_condition` float `[B, memory_length, memory_dim]` (sequence-to-sequence
    conditioning), and a feed-forward net with tanh-approximate GELU (or the erf formula).

    Generation state (fixed capacity `max_length`): per layer `k_<i>`, `v_<i>`
    float32 `[B, num_heads, max_length, head_dim]`, written at each row's own `index` with an
    equality mask; attention is masked to slots `<= index`. With a memory, `init_state`
    computes the cross-attention keys/values once and keeps them in the state as
    `cross_k_<i>`, `cross_v_<i>` `[B, num_heads, memory_length, head_dim]`, so `step` needs no
    memory input. Conditions per call:

    * `call`: all configured conditions; `init_state`: the memory (the global condition is
      optional there and unused);
    * `step`/`sample_step`: `global_condition` as in `inputs` (if configured), never the memory
      (`step_conditions` drops it; `step_condition_keys` lists what `step` takes);
    * `prefill`: `global_condition`; the memory may be passed (it is validated, not used).
    Stepping at `index >= max_length`, or prefilling past it, raises.

    Args:
        vocab_size: int. Token ids are in [0, vocab_size); the softmax size.
        num_layers: int. Transformer blocks. Default 2.
        num_heads: int. Attention heads; must divide `hidden_dim`. Default 4.
        hidden_dim: int. Width of the residual stream. Default 128.
        max_length: int. Longest sequence, and the capacity of the key/value cache.
            Default 256.
        num_global_classes: int. > 0: `global_condition` is int32 `[B]` class ids,
            embedded. Default 0: no global condition.
        global_condition_dim: int. > 0: `global_condition` is a float `[B, dim]` vector,
            projected (exclusive with `num_global_classes`). Default 0.
        intermediate_dim: int or None. Width of the feed-forward net; None (default):
            4 * hidden_dim.
        position: "learned" (the default) or "sinusoidal" position encodings.
        memory_dim: int. > 0 (with `memory_length`): cross-attention to a memory
            `local_condition` float `[B, memory_length, memory_dim]`. Default 0: none.
        memory_length: int. Positions of the memory (fixed). Default 0.
        dropout: float. Dropout rate of the embeddings, attention weights and residual
            branches (training only). Default 0.
        activation: the feed-forward activation: "gelu_tanh" (tanh-approximate GELU, the
            default), "gelu_erf" (the erf formula) or "relu".
        layer_norm_epsilon: float. Epsilon of every LayerNormalization. Default 1e-5.
        **kwargs: Passed to `AutoregressiveModel` (`metadata`, `name`, ...).

    Example:

    Scoring, then a prompt of two tokens and three sampled:

    >>> import numpy as np
    >>> from keras_ar.models import CausalTransformer
    >>> model = CausalTransformer(vocab_size=6, num_layers=1, num_heads=2, hidden_dim=8,
    ...                           max_length=8)
    >>> tokens = np.array([[1, 2, 3, 4]], np.int32)
    >>> tuple(model(tokens).shape), tuple(model.log_prob(tokens).shape)
    ((1, 4, 6), (1,))
    >>> sorted(model.init_state(1))
    ['index', 'k_0', 'v_0']
    >>> out = model.generate(prompt=tokens[:, :2], num_steps=3, seed=0)
    >>> tuple(out["x"].shape), out["lengths"].numpy().tolist()
    ((1, 3), [3])

    References:
        - Vaswani et al., "Attention Is All You Need", 2017, arXiv 1706.03762.
        - Xiong et al., "On Layer Normalization in the Transformer Architecture", 2020,
          arXiv 2002.04745 (pre-norm blocks).
        - Hendrycks and Gimpel, "Gaussian Error Linear Units (GELUs)", 2016,
          arXiv 1606.08415.
    """

    def __init__(self, vocab_size: int, num_layers: int = 2, num_heads: int = 4,
                 hidden_dim: int = 128, max_length: int = 256, num_global_classes: int = 0,
                 global_condition_dim: int = 0, intermediate_dim: int | None = None,
                 position: str = "learned", memory_dim: int = 0, memory_length: int = 0,
                 dropout: float = 0.0, activation: str = "gelu_tanh",
                 layer_norm_epsilon: float = 1e-5, **kwargs: Any) -> None:
        check_args(vocab_size, num_layers, num_heads, hidden_dim, max_length,
                   num_global_classes, global_condition_dim, position, memory_dim,
                   memory_length, activation)
        super().__init__(head=CategoricalHead(int(vocab_size), name="head"),
                         start_id=int(vocab_size), **kwargs)
        self.vocab_size = int(vocab_size)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.max_length = int(max_length)
        self.num_global_classes = int(num_global_classes)
        self.global_condition_dim = int(global_condition_dim)
        self.intermediate_dim = int(intermediate_dim or 4 * self.hidden_dim)
        self.position = position
        self.memory_dim = int(memory_dim)
        self.memory_length = int(memory_length)
        self.dropout = float(dropout)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self._make_layers()
        self._build_all()

    # ----------------------------------------------------------------- construction
    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    def _make_layers(self):
        d = self.hidden_dim
        self.token_embedding = keras.layers.Embedding(self.vocab_size + 1, d,
                                                      name="token_embedding")
        self.position_embedding = (keras.layers.Embedding(self.max_length, d,
                                                          name="position_embedding")
                                   if self.position == "learned" else None)
        self._sinusoids = (sinusoidal_table(self.max_length, d)
                           if self.position == "sinusoidal" else None)
        self.global_embedding = (keras.layers.Embedding(self.num_global_classes, d,
                                                        name="global_embedding")
                                 if self.num_global_classes else None)
        self.global_projection = (keras.layers.Dense(d, name="global_projection")
                                  if self.global_condition_dim else None)
        self.blocks = [
            TransformerBlock(d, self.num_heads, self.intermediate_dim, self.dropout,
                             use_cross_attention=bool(self.memory_dim),
                             memory_dim=self.memory_dim or None, activation=self.activation,
                             layer_norm_epsilon=self.layer_norm_epsilon, name=f"block_{i}")
            for i in range(self.num_layers)]
        self.embedding_dropout = keras.layers.Dropout(self.dropout)
        self.final_norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon,
                                                          name="final_norm")
        self.output_params = keras.layers.Dense(self.head.num_params, name="output_params")

    def _build_all(self):
        d = self.hidden_dim
        self.token_embedding.build((None, None))
        if self.position_embedding is not None:
            self.position_embedding.build((None, None))
        if self.global_embedding is not None:
            self.global_embedding.build((None,))
        if self.global_projection is not None:
            self.global_projection.build((None, self.global_condition_dim))
        for block in self.blocks:
            block.build()
        self.final_norm.build((None, None, d))
        self.output_params.build((None, None, d))
        self.built = True

    def build(self, input_shape: Any = None) -> None:
        self.built = True

    @property
    def event_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def step_condition_keys(self) -> tuple[str, ...]:
        """Condition keys `step` takes (the memory lives in the state)."""
        return tuple(k for k in conds.configured(self) if k != contract.LOCAL_CONDITION)

    def condition_specs(self, per_step: bool = False) -> dict[str, tf.TensorSpec]:
        """Conditions as in `inputs` (global, memory) or, per step, the global one only."""
        specs = {}
        if self.num_global_classes:
            specs[contract.GLOBAL_CONDITION] = tf.TensorSpec(
                [None], tf.int32, contract.GLOBAL_CONDITION)
        elif self.global_condition_dim:
            specs[contract.GLOBAL_CONDITION] = tf.TensorSpec(
                [None, self.global_condition_dim], tf.float32, contract.GLOBAL_CONDITION)
        if self.memory_dim and not per_step:
            specs[contract.LOCAL_CONDITION] = tf.TensorSpec(
                [None, self.memory_length, self.memory_dim], tf.float32,
                contract.LOCAL_CONDITION)
        return specs

    # ----------------------------------------------------------------- features
    def _validate_conditions(self, conditions, per_step=False):
        return conds.validate(self, conditions, per_step)

    def step_conditions(self, conditions: Conditions, state: State) -> Conditions:
        if not conditions:
            return conditions
        return {k: v for k, v in conditions.items() if k != contract.LOCAL_CONDITION}

    def _embed(self, tokens, positions, conditions):
        """tokens int [B, ...], positions int (broadcastable) -> e(tokens) + P[positions] + g."""
        h = tf.cast(tf.gather(self.token_embedding.embeddings, tokens), self.compute_dtype)
        table = (self.position_embedding.embeddings if self.position_embedding is not None
                 else tf.constant(self._sinusoids))
        # Clamped so that a position past the cache reaches the max_length check (an assert
        # in graphs) instead of failing in the gather; exported graphs never read out of range.
        positions = tf.minimum(positions, self.max_length - 1)
        h = h + tf.cast(tf.gather(table, positions), h.dtype)
        g = conditions.get(contract.GLOBAL_CONDITION)
        if g is not None:
            g = (tf.gather(self.global_embedding.embeddings, g)
                 if self.global_embedding is not None
                 else self.global_projection(tf.cast(g, self.compute_dtype)))
            g = tf.cast(g, h.dtype)
            h = h + (g if h.shape.rank == 2 else tf.expand_dims(g, 1))
        return h

    def _output(self, h):
        return self.output_params(self.final_norm(h))

    # ----------------------------------------------------------------- forward
    def call(self, inputs: Inputs, training: bool = False) -> tf.Tensor:
        inputs = self._as_inputs(inputs)
        x = self._validate_x(inputs[contract.X], contract.X)
        conditions = self._validate_conditions(
            {k: inputs[k] for k in contract.CONDITION_KEYS if k in inputs})
        conds.require(self, conditions, contract.CONDITION_KEYS, "inputs")
        length = tf.shape(x)[1]
        start = tf.fill([tf.shape(x)[0], 1], self.start_id)
        x_prev = tf.concat([start, x[:, :-1]], axis=1)  # (B, T)
        h = self._embed(x_prev, tf.expand_dims(tf.range(length), 0), conditions)  # (B, T, D)
        h = self.embedding_dropout(h, training=training)
        causal = tf.expand_dims(tf.range(length), 1) >= tf.expand_dims(tf.range(length), 0)
        memory = conditions.get(contract.LOCAL_CONDITION)
        if memory is not None:
            memory = tf.cast(memory, self.compute_dtype)
        for block in self.blocks:
            h = block(h, causal, memory, training=training)
        return self._output(h)

    # ----------------------------------------------------------------- step protocol
    def _state_spec(self, batch_size):
        cache = [batch_size, self.num_heads, self.max_length, self.head_dim]
        spec = {}
        for i in range(self.num_layers):
            spec[f"k_{i}"] = tf.TensorSpec(cache, tf.float32)
            spec[f"v_{i}"] = tf.TensorSpec(cache, tf.float32)
        if self.memory_dim:
            cross = [batch_size, self.num_heads, self.memory_length, self.head_dim]
            for i in range(self.num_layers):
                spec[f"cross_k_{i}"] = tf.TensorSpec(cross, tf.float32)
                spec[f"cross_v_{i}"] = tf.TensorSpec(cross, tf.float32)
        return spec

    def _init_state(self, batch_size, conditions):
        conds.require(self, conditions, (contract.LOCAL_CONDITION,), "init_state")
        cache = [batch_size, self.num_heads, self.max_length, self.head_dim]
        state = {}
        for i in range(self.num_layers):
            state[f"k_{i}"] = tf.zeros(cache, tf.float32)
            state[f"v_{i}"] = tf.zeros(cache, tf.float32)
        if self.memory_dim:
            memory = conditions[contract.LOCAL_CONDITION]
            conds.check_batch(batch_size, memory, contract.LOCAL_CONDITION)
            memory = tf.cast(memory, self.compute_dtype)
            for i, block in enumerate(self.blocks):
                key, value = block.cross_key_value(memory)  # (B, H, S, Dh)
                state[f"cross_k_{i}"] = tf.cast(key, tf.float32)
                state[f"cross_v_{i}"] = tf.cast(value, tf.float32)
        return state

    def _cross(self, state, i, new_state):
        """Pass layer i's memory keys/values through the state; kwargs for the block."""
        if not self.memory_dim:
            return {}
        new_state[f"cross_k_{i}"] = state[f"cross_k_{i}"]
        new_state[f"cross_v_{i}"] = state[f"cross_v_{i}"]
        return dict(cross_key=state[f"cross_k_{i}"], cross_value=state[f"cross_v_{i}"])

    def _step(self, x_prev, state, conditions):
        conds.require(self, conditions, (contract.GLOBAL_CONDITION,), "step")
        index = state[contract.INDEX_KEY]
        validation.check_max(
            index, self.max_length - 1, "state['index']",
            f"The key/value cache holds max_length={self.max_length} positions, so step "
            "needs index < max_length")
        h = self._embed(tf.cast(x_prev, tf.int32), index, conditions)  # (B, D)
        # Exportable masks: expand_dims/reshape, no new-axis slices (Flex on TFLite).
        slots = tf.expand_dims(tf.range(self.max_length), 0)  # (1, L)
        column = tf.expand_dims(index, 1)  # (B, 1)
        hit = tf.reshape(tf.equal(slots, column), [-1, 1, self.max_length, 1])
        bias = tf.reshape(tf.where(slots <= column, 0.0, _NEG_INF),
                          [-1, 1, 1, self.max_length])
        new_state = {}
        for i, block in enumerate(self.blocks):
            cross = self._cross(state, i, new_state)
            h, new_state[f"k_{i}"], new_state[f"v_{i}"] = block.step(
                h, state[f"k_{i}"], state[f"v_{i}"], hit, bias, **cross)
        return self._output(h), new_state

    def _prefill(self, x_prefix, state, conditions):
        conds.require(self, conditions, (contract.GLOBAL_CONDITION,), "prefill")
        index = state[contract.INDEX_KEY]
        length = tf.shape(x_prefix)[1]
        validation.check_max(
            index + length, self.max_length, "state['index'] + prefix length",
            f"The key/value cache holds max_length={self.max_length} positions; shorten the "
            "prefix")
        positions = tf.expand_dims(index, 1) + tf.expand_dims(tf.range(length), 0)  # (B, T)
        h = self._embed(tf.cast(x_prefix, tf.int32), positions, conditions)  # (B, T, D)
        slots = tf.reshape(tf.range(self.max_length), [1, 1, -1])  # (1, 1, L)
        column = tf.expand_dims(positions, 2)  # (B, T, 1)
        write = tf.cast(tf.equal(column, slots), tf.float32)  # (B, T, L)
        bias = tf.expand_dims(tf.where(slots <= column, 0.0, _NEG_INF), 1)  # (B, 1, T, L)
        new_state = {}
        for i, block in enumerate(self.blocks):
            cross = self._cross(state, i, new_state)
            h, new_state[f"k_{i}"], new_state[f"v_{i}"] = block.call_with_cache(
                h, state[f"k_{i}"], state[f"v_{i}"], write, bias, **cross)
        return self._output(h), new_state

    # ----------------------------------------------------------------- generation
    def check_generation_length(self, conditions: Conditions,
                                total_steps: int | tf.Tensor) -> None:
        """Generation writes cache positions [0, total_steps): at most max_length."""
        if isinstance(total_steps, int):
            if total_steps > self.max_length:
                raise ValueError(
                    f"Generation (prompt and steps) needs {total_steps} cache positions; this "
                    f"model's max_length is {self.max_length}. Ask for fewer steps or "
                    "build a model with a larger max_length.")
            return
        validation.check_max(total_steps, self.max_length, "prompt length + num_steps",
                             f"Generation needs at most max_length={self.max_length} positions")

    # ----------------------------------------------------------------- validation
    def _validate_x(self, x, name, allow_start=False):
        x = tf.convert_to_tensor(x)
        validation.check_rank(x, 2, name, "[batch, time] token ids")
        validation.check_integer(x, name)
        x = validation.check_ids_in_range(x, self.vocab_size + (1 if allow_start else 0), name)
        if x.shape[1] is not None and x.shape[1] > self.max_length:
            raise ValueError(
                f"`{name}` has {x.shape[1]} positions; this model's max_length is "
                f"{self.max_length}. Shorten the sequence or build a model with a larger "
                "max_length.")
        if x.shape[1] is None:
            validation.check_max(tf.shape(x)[1], self.max_length, f"{name} length",
                                 f"Sequences hold at most max_length={self.max_length} "
                                 "positions")
        return tf.cast(x, tf.int32)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, num_layers=self.num_layers, num_heads=self.num_heads,
            hidden_dim=self.hidden_dim, max_length=self.max_length,
            num_global_classes=self.num_global_classes,
            global_condition_dim=self.global_condition_dim,
            intermediate_dim=self.intermediate_dim, position=self.position,
            memory_dim=self.memory_dim, memory_length=self.memory_length,
            dropout=self.dropout, activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon)
        return config

