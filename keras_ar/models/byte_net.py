"""ByteNet (Kalchbrenner et al. 2016, arXiv 1610.10099) with an explicit generation state."""

import keras
import tensorflow as tf

from keras_ar import contract
from keras_ar.heads import CategoricalHead
from keras_ar.layers import DilatedResidualBlock, GatedResidualBlock
from keras_ar.models import source_ids
from keras_ar.models.autoregressive_model import AutoregressiveModel
from keras_ar.ops import validation

#: floor(a * n + 1e-4) + b in float32 arithmetic (the same rounding in and out of graphs).
unfolded_length = contract.unfolded_length


@keras.saving.register_keras_serializable(package="keras_ar")
class ByteNet(AutoregressiveModel):
    """p(y | s) = prod_t p(y_t | y_<t, s): a dilated decoder stacked on a dilated encoder.

    The source s is `local_condition`, int32 `[B, S]` (`source_ids`: S <= max_source_length,
    tokens then the pad id `source_vocab_size`; |s| = non-pad ids >= 1). The target y is
    int32 `[B, T]` in [0, target_vocab_size), T <= max_length = floor(a S_max) + b; a stop
    token of the caller's vocabulary ends it (`generate(stop_token=...)`). Dynamic unfolding:

        E = Encoder(s) over T_max = max_length positions: source embeddings, zeros past |s|;
            each `DilatedResidualBlock` (non-causal) zeroes positions >= U = floor(a|s|) + b,
            so E equals the encoder run on exactly U positions, and E[t >= U] = 0;
        h_0[t] = W_in [e(y_{t-1}); E[t]]       (y_{-1} = start_id = target_vocab_size);
        h_l, skip_l = GatedResidualBlock_l(h_{l-1})   (causal dilated, WaveNet's block);
        params[t] = W_2 relu(W_1 relu(sum_l skip_l[t])) + b   (CategoricalHead logits).

    Generation state: `encoded` float32 `[B, max_length, channels]` (E, computed once by
    `init_state` from the source) and one FIFO per decoder block, `buffer_<i>`
    `[B, dilation*(kernel-1), channels]`. `step` reads E at each row's index with an
    equality mask, so it takes no condition (`step_conditions` drops the source,
    `condition_specs(per_step=True)` is empty); `prefill` takes the source (validated,
    unused). Stepping at index >= max_length, or prefilling past it, raises.
    """

    def __init__(self, source_vocab_size, target_vocab_size, max_source_length, a=1.0, b=0,
                 encoder_dilations=(1, 2, 4), decoder_dilations=(1, 2, 4), channels=64,
                 kernel_size=3, **kwargs):
        _check_args(source_vocab_size, target_vocab_size, max_source_length, a, b,
                    encoder_dilations, decoder_dilations, channels, kernel_size)
        super().__init__(head=CategoricalHead(int(target_vocab_size), name="head"),
                         start_id=int(target_vocab_size), **kwargs)
        self.source_vocab_size = int(source_vocab_size)
        self.target_vocab_size = int(target_vocab_size)
        self.max_source_length = int(max_source_length)
        self.a = float(a)
        self.b = int(b)
        self.encoder_dilations = [int(d) for d in encoder_dilations]
        self.decoder_dilations = [int(d) for d in decoder_dilations]
        self.channels = int(channels)
        self.kernel_size = int(kernel_size)
        self._make_layers()
        self._build_all()

    # ----------------------------------------------------------------- construction
    @property
    def pad_id(self):
        """The source pad id (`source_vocab_size`)."""
        return self.source_vocab_size

    @property
    def max_length(self):
        """Target positions: floor(a * max_source_length) + b."""
        return unfolded_length(self.a, self.b, self.max_source_length)

    def _make_layers(self):
        c = self.channels
        self.source_embedding = keras.layers.Embedding(self.source_vocab_size + 1, c,
                                                       name="source_embedding")
        self.encoder_blocks = [
            DilatedResidualBlock(c, self.kernel_size, d, name=f"encoder_block_{i}")
            for i, d in enumerate(self.encoder_dilations)]
        self.target_embedding = keras.layers.Embedding(self.target_vocab_size + 1, c,
                                                       name="target_embedding")
        self.input_proj = keras.layers.Dense(c, name="input_proj")
        last = len(self.decoder_dilations) - 1
        self.decoder_blocks = [
            GatedResidualBlock(c, c, self.kernel_size, d, use_residual=i < last,
                               name=f"decoder_block_{i}")
            for i, d in enumerate(self.decoder_dilations)]
        self.output_hidden = keras.layers.Dense(c, name="output_hidden")
        self.output_params = keras.layers.Dense(self.head.num_params, name="output_params")

    def _build_all(self):
        c = self.channels
        self.source_embedding.build((None, None))
        for block in self.encoder_blocks:
            block.build((None, None, c))
        self.target_embedding.build((None, None))
        self.input_proj.build((None, None, 2 * c))
        for block in self.decoder_blocks:
            block.build((None, None, c))
        self.output_hidden.build((None, None, c))
        self.output_params.build((None, None, c))
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    @property
    def event_shape(self):
        return ()

    # ----------------------------------------------------------------- conditions
    def condition_specs(self, per_step=False):
        """The source `[B, max_source_length]` whole; nothing per step (it is in the state)."""
        if per_step:
            return {}
        return {contract.LOCAL_CONDITION: tf.TensorSpec(
            [None, self.max_source_length], tf.int32, contract.LOCAL_CONDITION)}

    def step_conditions(self, conditions, state):
        return {k: v for k, v in (conditions or {}).items() if k != contract.LOCAL_CONDITION}

    def _validate_conditions(self, conditions, per_step=False):
        unexpected = sorted(set(conditions) - {contract.LOCAL_CONDITION})
        if unexpected:
            raise ValueError(
                f"ByteNet takes no {unexpected}; its one condition is `local_condition`, "
                f"the source ids {source_ids.LAYOUT}.")
        if per_step and conditions:
            raise ValueError(
                "`step` takes no `local_condition`: `init_state` encodes the source once and "
                "keeps it in the state (`encoded`). Pass the source to `init_state` (or use "
                "`step_conditions`, which drops it).")
        if contract.LOCAL_CONDITION not in conditions:
            return {}
        ids = source_ids.validate(conditions[contract.LOCAL_CONDITION], self.source_vocab_size,
                                  self.max_source_length)
        return {contract.LOCAL_CONDITION: ids}

    def _require_source(self, conditions, where):
        if contract.LOCAL_CONDITION not in conditions:
            raise ValueError(
                f"ByteNet requires the source `local_condition` in `{where}`; received "
                f"{sorted(conditions)}. Pass {source_ids.LAYOUT}.")
        return conditions[contract.LOCAL_CONDITION]

    # ----------------------------------------------------------------- encoder
    def encode(self, source):
        """Validated source ids [B, S] -> E [B, max_length, channels] (zero past a|s| + b)."""
        length = self.max_length
        ids = source_ids.pad_to(source, length, self.pad_id)  # (B, T_max >= S)
        n = tf.cast(source_ids.lengths(ids, self.pad_id), tf.float32)
        unfolded = tf.cast(tf.floor(self.a * n + 1e-4), tf.int32) + self.b  # (B,)
        positions = tf.expand_dims(tf.range(length), 0)  # (1, T_max)
        mask = tf.expand_dims(tf.cast(positions < tf.expand_dims(unfolded, 1),
                                      self.compute_dtype), -1)  # (B, T_max, 1)
        tokens = tf.expand_dims(tf.cast(tf.not_equal(ids, self.pad_id), self.compute_dtype), -1)
        h = tf.cast(tf.gather(self.source_embedding.embeddings, ids), self.compute_dtype)
        h = h * tokens  # (B, T_max, C): zeros past the source
        for block in self.encoder_blocks:
            h = block(h, mask)
        return h

    # ----------------------------------------------------------------- decoder
    def _decoder_input(self, x_prev, encoded):
        """x_prev int [B, ...], E rows [B, ..., C] -> W_in [e(x_prev); E]."""
        e = tf.cast(tf.gather(self.target_embedding.embeddings, x_prev), self.compute_dtype)
        return self.input_proj(tf.concat([e, tf.cast(encoded, e.dtype)], axis=-1))

    def _output(self, skips):
        return self.output_params(tf.nn.relu(self.output_hidden(tf.nn.relu(skips))))

    def call(self, inputs, training=False):
        inputs = self._as_inputs(inputs)
        x = self._validate_x(inputs[contract.X], contract.X)
        conditions = self._validate_conditions(
            {k: inputs[k] for k in contract.CONDITION_KEYS if k in inputs})
        encoded = self.encode(self._require_source(conditions, "inputs"))
        start = tf.fill([tf.shape(x)[0], 1], self.start_id)
        x_prev = tf.concat([start, x[:, :-1]], axis=1)  # (B, T)
        h = self._decoder_input(x_prev, encoded[:, :tf.shape(x)[1]])  # (B, T, C)
        skips = 0.0
        for block in self.decoder_blocks:
            h, skip, _ = block(h)
            skips = skips + skip
        return self._output(skips)

    # ----------------------------------------------------------------- step protocol
    def _state_spec(self, batch_size):
        spec = {"encoded": tf.TensorSpec([batch_size, self.max_length, self.channels],
                                         tf.float32)}
        for i, block in enumerate(self.decoder_blocks):
            spec[f"buffer_{i}"] = tf.TensorSpec(
                [batch_size, block.buffer_length, self.channels], tf.float32)
        return spec

    def _init_state(self, batch_size, conditions):
        source = self._require_source(conditions, "init_state")
        batch = source.shape[0]
        if isinstance(batch_size, int) and batch is not None and batch != batch_size:
            raise ValueError(
                f"`local_condition` has batch {batch}; `batch_size` is {batch_size}. Give one "
                "source per generated sequence.")
        state = {"encoded": tf.cast(self.encode(source), tf.float32)}
        for i, block in enumerate(self.decoder_blocks):
            state[f"buffer_{i}"] = tf.zeros([batch_size, block.buffer_length, self.channels])
        return state

    def _step(self, x_prev, state, conditions):
        index = state[contract.INDEX_KEY]
        validation.check_max(
            index, self.max_length - 1, "state['index']",
            f"The target holds max_length={self.max_length} positions (a * "
            "max_source_length + b), so step needs index < max_length")
        slots = tf.expand_dims(tf.range(self.max_length), 0)  # (1, T_max)
        hit = tf.expand_dims(tf.equal(slots, tf.expand_dims(index, 1)), -1)  # (B, T_max, 1)
        encoded = state["encoded"]
        e_t = tf.reduce_sum(tf.where(hit, encoded, tf.zeros_like(encoded)), axis=1)  # (B, C)
        h = self._decoder_input(tf.cast(x_prev, tf.int32), e_t)
        new_state, skips = {"encoded": encoded}, 0.0
        for i, block in enumerate(self.decoder_blocks):
            h, skip, buffer = block.step(h, None, state[f"buffer_{i}"])
            new_state[f"buffer_{i}"] = tf.cast(buffer, tf.float32)
            skips = skips + skip
        return self._output(skips), new_state

    def _prefill(self, x_prefix, state, conditions):
        index = state[contract.INDEX_KEY]
        length = tf.shape(x_prefix)[1]
        validation.check_max(
            index + length, self.max_length, "state['index'] + prefix length",
            f"The target holds max_length={self.max_length} positions; shorten the prefix")
        positions = tf.expand_dims(index, 1) + tf.expand_dims(tf.range(length), 0)  # (B, T)
        slots = tf.reshape(tf.range(self.max_length), [1, 1, -1])  # (1, 1, T_max)
        pick = tf.cast(tf.equal(tf.expand_dims(positions, 2), slots), tf.float32)
        encoded = tf.matmul(pick, state["encoded"])  # (B, T, C)
        h = self._decoder_input(tf.cast(x_prefix, tf.int32), encoded)
        new_state, skips = {"encoded": state["encoded"]}, 0.0
        for i, block in enumerate(self.decoder_blocks):
            h, skip, buffer = block(h, None, buffer=state[f"buffer_{i}"])
            new_state[f"buffer_{i}"] = tf.cast(buffer, tf.float32)
            skips = skips + skip
        return self._output(skips), new_state

    def check_generation_length(self, conditions, total_steps):
        """Generation writes target positions [0, total_steps): at most max_length."""
        if isinstance(total_steps, int) and total_steps > self.max_length:
            raise ValueError(
                f"Generation (prompt and steps) needs {total_steps} target positions; this "
                f"ByteNet's max_length is {self.max_length} (a * max_source_length + b). "
                "Ask for fewer steps.")
        if not isinstance(total_steps, int):
            validation.check_max(total_steps, self.max_length, "prompt length + num_steps",
                                 f"Generation needs at most max_length={self.max_length} "
                                 "positions")

    # ----------------------------------------------------------------- validation
    def _validate_x(self, x, name, allow_start=False):
        x = tf.convert_to_tensor(x)
        validation.check_rank(x, 2, name, "[batch, time] target ids")
        validation.check_integer(x, name)
        x = validation.check_ids_in_range(
            x, self.target_vocab_size + (1 if allow_start else 0), name)
        if x.shape[1] is not None and x.shape[1] > self.max_length:
            raise ValueError(
                f"`{name}` has {x.shape[1]} positions; this ByteNet's max_length is "
                f"{self.max_length} (a * max_source_length + b). Shorten the target or "
                "build a model with larger a, b or max_source_length.")
        if x.shape[1] is None:
            validation.check_max(tf.shape(x)[1], self.max_length, f"{name} length",
                                 f"Targets hold at most max_length={self.max_length} "
                                 "positions")
        return tf.cast(x, tf.int32)

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocab_size=self.source_vocab_size,
            target_vocab_size=self.target_vocab_size,
            max_source_length=self.max_source_length, a=self.a, b=self.b,
            encoder_dilations=self.encoder_dilations,
            decoder_dilations=self.decoder_dilations, channels=self.channels,
            kernel_size=self.kernel_size)
        return config


def _check_args(source_vocab_size, target_vocab_size, max_source_length, a, b,
                encoder_dilations, decoder_dilations, channels, kernel_size):
    for name, value in (("source_vocab_size", source_vocab_size),
                        ("target_vocab_size", target_vocab_size),
                        ("max_source_length", max_source_length), ("channels", channels),
                        ("kernel_size", kernel_size)):
        if int(value) < 1:
            raise ValueError(f"`{name}` must be >= 1; received {value}.")
    if float(a) < 1 or int(b) < 0:
        raise ValueError(
            f"Dynamic unfolding needs a >= 1 and b >= 0 (the target positions a|s| + b cover "
            f"the source); received a={a}, b={b}.")
    for name, dilations in (("encoder_dilations", encoder_dilations),
                            ("decoder_dilations", decoder_dilations)):
        if not dilations or min(int(d) for d in dilations) < 1:
            raise ValueError(f"`{name}` must be a non-empty list of dilations >= 1; "
                             f"received {dilations}.")
