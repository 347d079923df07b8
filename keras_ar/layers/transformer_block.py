"""A pre-norm Transformer decoder block with an explicit key/value cache."""

import math

import keras
import tensorflow as tf

from keras_ar.layers.cached_attention import CachedMultiHeadAttention

ACTIVATIONS = ("gelu_tanh", "gelu_erf", "relu")


def feed_forward_activation(x, name):
    """GELU without `Erfc` (exact keras gelu does not convert to ONNX), or relu.

    gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
    gelu_erf:  0.5 x (1 + erf(x / sqrt(2))).
    """
    if name == "gelu_tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + tf.tanh(inner))
    if name == "gelu_erf":
        return 0.5 * x * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))
    return tf.nn.relu(x)


@keras.saving.register_keras_serializable(package="keras_ar")
class TransformerBlock(keras.layers.Layer):
    """h = x + SelfAttn(LN(x));  h = h + CrossAttn(LN(h), memory);  y = h + FFN(LN(h)).

    Pre-norm (Xiong et al. 2020) decoder block; FFN(z) = W_2 act(W_1 z), act = tanh-GELU by
    default. Cross-attention (to an encoder memory `[B, S, memory_dim]`) exists only with
    `use_cross_attention=True`. Modes:

    * `call(x, self_mask, memory=None)`: teacher forcing; `self_mask` bool `[T, T]` (causal);
    * `call_with_cache(x, cache_key, cache_value, write, bias, cross_key, cross_value)` ->
      (y, cache_key, cache_value): x `[B, T, D]` at cache slots selected by `write`
      (`CachedMultiHeadAttention.call_with_cache`), cross-attention to the precomputed memory
      keys/values `[B, H, S, head_dim]` (prefill);
    * `step(h_t, cache_key, cache_value, hit, bias, cross_key, cross_value)`: one position
      `[B, D]` (generation).
    """

    def __init__(self, hidden_dim, num_heads, intermediate_dim=None, dropout=0.0,
                 use_cross_attention=False, memory_dim=None, activation="gelu_tanh",
                 layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim or 4 * self.hidden_dim)
        self.dropout = float(dropout)
        self.use_cross_attention = bool(use_cross_attention)
        self.memory_dim = int(memory_dim or self.hidden_dim)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"`hidden_dim` ({hidden_dim}) must be divisible by `num_heads` "
                             f"({num_heads}).")
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {ACTIVATIONS}; received "
                             f"{activation!r}.")
        head_dim = self.hidden_dim // self.num_heads
        eps = self.layer_norm_epsilon
        self.self_norm = keras.layers.LayerNormalization(epsilon=eps, name="self_norm")
        self.self_attention = CachedMultiHeadAttention(
            self.num_heads, head_dim, self.hidden_dim, self.dropout, name="self_attention")
        self.cross_norm = self.cross_attention = None
        if self.use_cross_attention:
            self.cross_norm = keras.layers.LayerNormalization(epsilon=eps, name="cross_norm")
            self.cross_attention = CachedMultiHeadAttention(
                self.num_heads, head_dim, self.hidden_dim, self.dropout,
                name="cross_attention")
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=eps, name="ffn_norm")
        self.ffn_inner = keras.layers.Dense(self.intermediate_dim, name="ffn_inner")
        self.ffn_outer = keras.layers.Dense(self.hidden_dim, name="ffn_outer")
        self.residual_dropout = keras.layers.Dropout(self.dropout)

    def build(self, input_shape=None):
        shape = (None, None, self.hidden_dim)
        self.self_norm.build(shape)
        self.self_attention.build(shape)
        if self.use_cross_attention:
            self.cross_norm.build(shape)
            self.cross_attention.build(shape, (None, None, self.memory_dim))
        self.ffn_norm.build(shape)
        self.ffn_inner.build(shape)
        self.ffn_outer.build((None, None, self.intermediate_dim))
        self.built = True

    def _feed_forward(self, h, training):
        z = feed_forward_activation(self.ffn_inner(self.ffn_norm(h)), self.activation)
        return h + self.residual_dropout(self.ffn_outer(z), training=training)

    def _cross(self, h, key, value, training):
        out = self.cross_attention.attend(self.cross_norm(h), key, value, training=training)
        return h + self.residual_dropout(out, training=training)

    def cross_key_value(self, memory):
        """memory [B, S, memory_dim] -> cross (k, v), each [B, H, S, head_dim]."""
        return self.cross_attention.key_value(memory)

    def call(self, x, self_mask=None, memory=None, training=False):
        out = self.self_attention(self.self_norm(x), attention_mask=self_mask,
                                  training=training)
        h = x + self.residual_dropout(out, training=training)
        if self.use_cross_attention:
            if memory is None:
                raise ValueError("This block has cross-attention: pass `memory`.")
            key, value = self.cross_key_value(memory)
            h = self._cross(h, key, value, training)
        return self._feed_forward(h, training)

    def call_with_cache(self, x, cache_key, cache_value, write, bias, cross_key=None,
                        cross_value=None, training=False):
        out, cache_key, cache_value = self.self_attention.call_with_cache(
            self.self_norm(x), cache_key, cache_value, write, bias, training=training)
        h = x + self.residual_dropout(out, training=training)
        if self.use_cross_attention:
            h = self._cross(h, cross_key, cross_value, training)
        return self._feed_forward(h, training), cache_key, cache_value

    def step(self, h_t, cache_key, cache_value, hit, bias, cross_key=None, cross_value=None):
        """One position h_t [B, D] (rank 2: no reshapes around the dense layers); `hit`/`bias`
        as in `CachedMultiHeadAttention.step`. Returns (y_t, cache_key, cache_value)."""
        out, cache_key, cache_value = self.self_attention.step(
            self.self_norm(h_t), cache_key, cache_value, hit, bias)
        h = h_t + out
        if self.use_cross_attention:
            h = h + self.cross_attention.step_attend(self.cross_norm(h), cross_key, cross_value)
        z = feed_forward_activation(self.ffn_inner(self.ffn_norm(h)), self.activation)
        return h + self.ffn_outer(z), cache_key, cache_value

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim, num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim, dropout=self.dropout,
            use_cross_attention=self.use_cross_attention, memory_dim=self.memory_dim,
            activation=self.activation, layer_norm_epsilon=self.layer_norm_epsilon)
        return config
