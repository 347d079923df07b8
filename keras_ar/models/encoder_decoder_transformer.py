"""An encoder-decoder Transformer: CausalTransformer's cross-attention decoder over source ids."""

import keras
import tensorflow as tf

from keras_ar import contract
from keras_ar.layers.transformer_block import TransformerBlock
from keras_ar.models import causal_transformer_conditions as conds
from keras_ar.models import source_ids
from keras_ar.models.causal_transformer import CausalTransformer, sinusoidal_table


@keras.saving.register_keras_serializable(package="keras_ar")
class EncoderDecoderTransformer(CausalTransformer):
    """p(y | s) = prod_t p(y_t | y_<t, s): a bidirectional encoder makes the decoder's memory.

    The source s is `local_condition`, int32 `[B, S]` (`source_ids`: S <= max_source_length,
    tokens then the pad id `source_vocab_size`, at least one token per row); shorter sources
    are padded to max_source_length. With e_s = source embedding and P_s = source positions
    (learned or sinusoidal, as `position`), m[j] = 1 where s_j is a token:

        g_0[j] = e_s(s_j) + P_s[j];   g_l = Block_l(g_{l-1}, keys masked to m);
        M = LayerNorm(g_L)   [B, max_source_length, hidden_dim];

    `Block` is the decoder's `TransformerBlock` without cross-attention and without the causal
    mask: every position attends to all of the source's tokens (not to pads). The decoder is
    `CausalTransformer` with memory M (`memory_dim = hidden_dim`, `memory_length =
    max_source_length`); its cross-attention reads all max_source_length rows of M, the pad
    rows included (they are functions of the source's tokens too). Target `x`, heads,
    positions and the global condition are as in `CausalTransformer`.

    Generation state: the decoder's `k_<i>`, `v_<i>` cache and `cross_k_<i>`, `cross_v_<i>`
    `[B, num_heads, max_source_length, head_dim]`, computed once by `init_state` from the
    source, so `step` takes no source (`step_conditions` drops it).
    """

    def __init__(self, source_vocab_size, target_vocab_size, max_source_length,
                 encoder_layers=2, **kwargs):
        for key in ("memory_dim", "memory_length", "vocab_size"):
            if key in kwargs:
                raise ValueError(
                    f"EncoderDecoderTransformer sets `{key}` itself (memory = the encoder's "
                    "output, vocab_size = target_vocab_size); received it as an argument.")
        for name, value in (("source_vocab_size", source_vocab_size),
                            ("max_source_length", max_source_length),
                            ("encoder_layers", encoder_layers)):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be >= 1; received {value}.")
        self.source_vocab_size = int(source_vocab_size)
        self.max_source_length = int(max_source_length)
        self.encoder_layers = int(encoder_layers)
        hidden_dim = int(kwargs.get("hidden_dim", 128))
        super().__init__(vocab_size=target_vocab_size, memory_dim=hidden_dim,
                         memory_length=self.max_source_length, **kwargs)

    @property
    def target_vocab_size(self):
        return self.vocab_size

    @property
    def pad_id(self):
        """The source pad id (`source_vocab_size`)."""
        return self.source_vocab_size

    # ----------------------------------------------------------------- construction
    def _make_layers(self):
        super()._make_layers()
        d = self.hidden_dim
        self.source_embedding = keras.layers.Embedding(self.source_vocab_size + 1, d,
                                                       name="source_embedding")
        self.source_position_embedding = (
            keras.layers.Embedding(self.max_source_length, d, name="source_position_embedding")
            if self.position == "learned" else None)
        self.encoder_blocks = [
            TransformerBlock(d, self.num_heads, self.intermediate_dim, self.dropout,
                             activation=self.activation,
                             layer_norm_epsilon=self.layer_norm_epsilon,
                             name=f"encoder_block_{i}")
            for i in range(self.encoder_layers)]
        self.encoder_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="encoder_norm")

    def _build_all(self):
        self.source_embedding.build((None, None))
        if self.source_position_embedding is not None:
            self.source_position_embedding.build((None, None))
        for block in self.encoder_blocks:
            block.build()
        self.encoder_norm.build((None, None, self.hidden_dim))
        super()._build_all()

    # ----------------------------------------------------------------- conditions
    def condition_specs(self, per_step=False):
        specs = super().condition_specs(per_step)
        if not per_step:
            specs[contract.LOCAL_CONDITION] = tf.TensorSpec(
                [None, self.max_source_length], tf.int32, contract.LOCAL_CONDITION)
        return specs

    def _validate_conditions(self, conditions, per_step=False):
        rest = {k: v for k, v in conditions.items() if k != contract.LOCAL_CONDITION}
        out = conds.validate(self, rest, per_step)
        if contract.LOCAL_CONDITION in conditions:
            if per_step:
                conds.validate(self, conditions, per_step)  # raises: step takes no memory
            out[contract.LOCAL_CONDITION] = source_ids.validate(
                conditions[contract.LOCAL_CONDITION], self.source_vocab_size,
                self.max_source_length)
        return out

    # ----------------------------------------------------------------- encoder
    def encode(self, source, training=False):
        """Validated source ids [B, S] -> memory M [B, max_source_length, hidden_dim]."""
        ids = source_ids.pad_to(source, self.max_source_length, self.pad_id)  # (B, S_max)
        table = (self.source_position_embedding.embeddings
                 if self.source_position_embedding is not None
                 else tf.constant(sinusoidal_table(self.max_source_length, self.hidden_dim)))
        h = tf.cast(tf.gather(self.source_embedding.embeddings, ids), self.compute_dtype)
        h = h + tf.cast(tf.expand_dims(table, 0), h.dtype)  # (B, S_max, D)
        h = self.embedding_dropout(h, training=training)
        keys = tf.reshape(tf.not_equal(ids, self.pad_id), [-1, 1, 1, self.max_source_length])
        for block in self.encoder_blocks:
            h = block(h, keys, training=training)
        return self.encoder_norm(h)

    def call(self, inputs, training=False):
        """The source ids replaced by the encoder's memory, then `CausalTransformer.call`."""
        inputs = self._as_inputs(inputs)
        conditions = self._validate_conditions(
            {k: inputs[k] for k in contract.CONDITION_KEYS if k in inputs})
        conds.require(self, conditions, contract.CONDITION_KEYS, "inputs")
        memory = self.encode(conditions[contract.LOCAL_CONDITION], training=training)
        return self._decode(inputs[contract.X], memory, conditions, training)

    def _decode(self, x, memory, conditions, training):
        """CausalTransformer's teacher-forced decoder over target x with a float memory."""
        x = self._validate_x(x, contract.X)
        length = tf.shape(x)[1]
        start = tf.fill([tf.shape(x)[0], 1], self.start_id)
        x_prev = tf.concat([start, x[:, :-1]], axis=1)  # (B, T)
        h = self._embed(x_prev, tf.expand_dims(tf.range(length), 0), conditions)  # (B, T, D)
        h = self.embedding_dropout(h, training=training)
        causal = tf.expand_dims(tf.range(length), 1) >= tf.expand_dims(tf.range(length), 0)
        for block in self.blocks:
            h = block(h, causal, memory, training=training)
        return self._output(h)

    def _init_state(self, batch_size, conditions):
        conds.require(self, conditions, (contract.LOCAL_CONDITION,), "init_state")
        source = conditions[contract.LOCAL_CONDITION]
        conds.check_batch(batch_size, source, contract.LOCAL_CONDITION)
        memory = self.encode(source)
        return super()._init_state(batch_size, {contract.LOCAL_CONDITION: memory})

    def get_config(self):
        config = super().get_config()
        for key in ("memory_dim", "memory_length", "vocab_size"):
            config.pop(key)
        config.update(source_vocab_size=self.source_vocab_size,
                      target_vocab_size=self.target_vocab_size,
                      max_source_length=self.max_source_length,
                      encoder_layers=self.encoder_layers)
        return config
