"""Multi-head attention whose key/value cache is passed in and returned."""

import keras
import tensorflow as tf

_NEG_INF = -1e9


@keras.saving.register_keras_serializable(package="keras_ar")
class CachedMultiHeadAttention(keras.layers.Layer):
    """out = W_o concat_h softmax(q_h k_h^T / sqrt(d) + bias) v_h  (Vaswani et al. 2017).

    q = W_q x_query, [k, v] = W_kv x_value, split into `num_heads` heads of `head_dim`.
    Keys and values are laid out `[B, num_heads, S, head_dim]` (rank 4: converts to TFLite
    builtins and ONNX). The layer holds no state; its modes:

    * `call(query, value=None, attention_mask=None)`: uncached attention (`value=None` is
      self-attention); `attention_mask` bool, broadcastable to `[B, H, T_q, T_k]`, True = may
      attend. Teacher forcing uses a causal mask.
    * `key_value(value)` -> (k, v) `[B, H, S, head_dim]`: project a memory once (cross
      attention caches these in the model state).
    * `attend(query, key, value, bias=None)`: attention of `query` `[B, T, D]` to given keys and
      values; `bias` float, broadcastable to `[B, 1, T, S]`, added to the scores (0 or -1e9).
    * `call_with_cache(query, cache_key, cache_value, write, bias)` -> (out, cache_key,
      cache_value): self-attention with a fixed-capacity cache `[B, H, L, head_dim]` (prefill).
      The T new keys/values are written at the slots selected by the float one-hot `write`
      `[B, T, L]` (row b, query t -> slot index_b + t) as `c * (1 - sum_t w) + w^T k_new`,
      then the queries attend over the whole cache under `bias` `[B, 1, T, L]` (the caller
      masks slots > index_b + t).
    * `step(x_t, cache_key, cache_value, hit, bias)`: the same for one position `[B, D]`,
      written with an equality-mask select (`hit` bool `[B, 1, L, 1]`); `step_attend(x_t,
      key, value)` attends to fixed (cross) keys/values. No scatter, no dynamic slices.
    """

    def __init__(self, num_heads, head_dim, output_dim=None, dropout=0.0, use_bias=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        self.output_dim = None if output_dim is None else int(output_dim)
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        if self.num_heads < 1 or self.head_dim < 1:
            raise ValueError(f"`num_heads` and `head_dim` must be >= 1; received "
                             f"{num_heads}, {head_dim}.")
        width = self.num_heads * self.head_dim
        self.query_dense = keras.layers.Dense(width, use_bias=self.use_bias, name="query")
        self.key_value_dense = keras.layers.Dense(2 * width, use_bias=self.use_bias,
                                                  name="key_value")
        self.output_dense = None  # built once the query width is known
        self.attention_dropout = keras.layers.Dropout(self.dropout)

    def build(self, query_shape, value_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        out_dim = self.output_dim or int(query_shape[-1])
        if self.output_dense is None:
            self.output_dense = keras.layers.Dense(out_dim, use_bias=self.use_bias,
                                                   name="output")
        self.query_dense.build(query_shape)
        self.key_value_dense.build(value_shape)
        self.output_dense.build(tuple(query_shape[:-1]) + (self.num_heads * self.head_dim,))
        self.built = True

    # ----------------------------------------------------------------- projections
    def _split_heads(self, x, heads):
        """(B, T, heads * Dh) -> (B, heads, T, Dh)."""
        x = tf.reshape(x, [-1, _length(x), heads, self.head_dim])  # (B, T, heads, Dh)
        return tf.transpose(x, [0, 2, 1, 3])

    def query(self, x):
        return self._split_heads(self.query_dense(x), self.num_heads)

    def key_value(self, value):
        """value [B, S, D_v] -> (k, v), each [B, H, S, head_dim]."""
        kv = self._split_heads(self.key_value_dense(value), 2 * self.num_heads)
        key, val = tf.split(kv, 2, axis=1)  # (B, H, S, Dh) each
        return key, val

    # ----------------------------------------------------------------- attention
    def _context(self, q, key, value, bias, training):
        """q (B, H, T, Dh), key/value (B, H, S, Dh) -> (B, H, T, Dh)."""
        key = tf.cast(key, q.dtype)
        value = tf.cast(value, q.dtype)
        scores = tf.matmul(q, key, transpose_b=True)  # (B, H, T, S)
        scores = tf.cast(scores, tf.float32) * (1.0 / float(self.head_dim) ** 0.5)
        if bias is not None:
            scores = scores + tf.cast(bias, tf.float32)
        weights = tf.cast(tf.nn.softmax(scores, axis=-1), q.dtype)
        weights = self.attention_dropout(weights, training=training)
        return tf.matmul(weights, value)

    def _merge_heads(self, context):
        """(B, H, T, Dh) -> output projection (B, T, output_dim)."""
        context = tf.transpose(context, [0, 2, 1, 3])  # (B, T, H, Dh)
        context = tf.reshape(context, [-1, _length(context), self.num_heads * self.head_dim])
        return self.output_dense(context)

    def attend(self, query, key, value, bias=None, training=False):
        return self._merge_heads(self._context(self.query(query), key, value, bias, training))

    def call(self, query, value=None, attention_mask=None, training=False):
        key, val = self.key_value(query if value is None else value)
        bias = None
        if attention_mask is not None:
            bias = tf.where(tf.cast(attention_mask, tf.bool), 0.0, _NEG_INF)
        return self.attend(query, key, val, bias, training)

    def call_with_cache(self, query, cache_key, cache_value, write, bias, training=False):
        """Write the T new keys/values into the cache with a one-hot matmul, then attend over
        it (see class doc). query [B, T, D], write float [B, T, L], bias [B, 1, T, L]."""
        key, val = self.key_value(query)
        placed = tf.expand_dims(tf.transpose(write, [0, 2, 1]), 1)  # (B, 1, L, T)
        keep = 1.0 - tf.reduce_sum(placed, axis=-1, keepdims=True)  # (B, 1, L, 1)
        cache_key = cache_key * keep + tf.matmul(placed, tf.cast(key, tf.float32))
        cache_value = cache_value * keep + tf.matmul(placed, tf.cast(val, tf.float32))
        context = self._context(self.query(query), cache_key, cache_value, bias, training)
        return self._merge_heads(context), cache_key, cache_value

    # ----------------------------------------------------------------- one position
    def _step_heads(self, x, heads):
        """(B, heads * Dh) -> (B, heads, 1, Dh): with one position no transpose is needed."""
        return tf.reshape(x, [-1, heads, 1, self.head_dim])

    def _step_output(self, context):
        """(B, H, 1, Dh) -> (B, output_dim)."""
        return self.output_dense(tf.reshape(context, [-1, self.num_heads * self.head_dim]))

    def step(self, x_t, cache_key, cache_value, hit, bias):
        """One position, x_t [B, D]: write k_t, v_t where `hit` (bool [B, 1, L, 1], True at
        each row's index) and attend over the cache under `bias` [B, 1, 1, L].
        Returns (out [B, output_dim], cache_key, cache_value)."""
        kv = self._step_heads(self.key_value_dense(x_t), 2 * self.num_heads)
        key, val = tf.split(tf.cast(kv, tf.float32), 2, axis=1)  # (B, H, 1, Dh) each
        cache_key = tf.where(hit, key, cache_key)  # (B, H, L, Dh)
        cache_value = tf.where(hit, val, cache_value)
        q = self._step_heads(self.query_dense(x_t), self.num_heads)
        context = self._context(q, cache_key, cache_value, bias, False)
        return self._step_output(context), cache_key, cache_value

    def step_attend(self, x_t, key, value):
        """One position x_t [B, D] attending to fixed keys/values [B, H, S, Dh] (cross)."""
        q = self._step_heads(self.query_dense(x_t), self.num_heads)
        return self._step_output(self._context(q, key, value, None, False))

    def compute_output_shape(self, query_shape, value_shape=None):
        return tuple(query_shape[:-1]) + (self.output_dim or query_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, head_dim=self.head_dim,
                      output_dim=self.output_dim, dropout=self.dropout,
                      use_bias=self.use_bias)
        return config


def _length(x):
    """Static size of axis 1 when known (fewer shape ops in a step), else dynamic."""
    return x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
