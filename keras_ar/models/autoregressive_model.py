"""The base class of every keras-ar model: one step protocol for scoring and generation."""

import keras
import tensorflow as tf

from keras_ar import contract
from keras_ar.models import generation, input_checks
from keras_ar.ops import validation


@keras.saving.register_keras_serializable(package="keras_ar")
class AutoregressiveModel(keras.Model):
    """An autoregressive model p(x) = prod_t p(x_t | x_<t, c).

    Invariant: `params = model(inputs)` computes, for all positions in parallel
    (teacher forcing), `params[:, t]` parameterising p(x_t | x_<t, c) through `self.head`.
    Each model does its own causal shift, so datasets carry inputs only and the training loss
    is `-mean(log_prob)`.

    The step protocol (state is a flat dict of fixed-shape tensors with a leading batch
    dimension, always holding `index: int32[B]`, passed in and returned, never kept in
    variables):

    * `init_state(batch_size, conditions)` -> state at index 0;
    * `step(x_prev, state, conditions)` -> (params_t, state): step t receives x[:, t-1]
      (`start_id` at t = 0) and returns `model(inputs)[:, t]`; pure, static shapes apart from
      the batch, XLA-compilable;
    * `prefill(x_prefix, state, conditions)` -> (params, state): the same as stepping through
      `x_prefix[:, 0], x_prefix[:, 1], ...` as `x_prev` values, in one call;
    * `sample_step(x_prev, state, noise, temperature, top_k, top_p, conditions)` ->
      (x_t, params_t, state): the head draws x_t from uniform `noise` (`head.noise_spec`);
    * `sample_chunk(x_prev, state, noise [B, K, ...], controls, chunk conditions, prompt,
      prompt_length, stop_token)` -> (out, state): K `sample_step`s in one `tf.while_loop`
      (`chunk_loop`), `out = {"x": [B, K, *event], "lengths": [B], "stop": [B]}`;
    * `generate(...)`: `init_state` (+ `prefill`), then one chunk of `num_steps`.

    Conditions use the keys of `inputs` (`global_condition`, `local_condition`). `init_state`,
    `prefill` and `generate` take them whole, as in `inputs`; `step` and `sample_step` take
    them per step (`step_conditions(conditions, state)` converts; see each model's docs).

    Subclasses implement `call`, `_state_spec`, `_init_state`, `_step` and
    `_validate_conditions`, and may override `_prefill` with a parallel pass (the default
    scans `_step` in a `tf.while_loop`) and `_multi_step` with a faster body for many steps.
    Generation is owned here and by `chunk_loop`: `sample_chunk` is the one loop,
    `sample_step` its body, and `generate` one chunk from `init_state`.
    """

    def __init__(self, head, start_id=0, metadata=None, **kwargs):
        super().__init__(**kwargs)
        self.metadata = input_checks.checked_metadata(metadata)
        self.head = head
        if not head.built:
            head.build(None)
        self.start_id = start_id
        self._generate_functions = {}  # jit_compile -> tf.function of generation.noise_loop

    # ----------------------------------------------------------------- subclass hooks
    def _state_spec(self, batch_size):
        raise NotImplementedError

    def _init_state(self, batch_size, conditions):
        raise NotImplementedError

    def _step(self, x_prev, state, conditions):
        raise NotImplementedError

    def _multi_step(self):
        """A faster body for many sampling steps, or None (the default: `sample_step`).

        The one hook for models whose large state changes slowly: an object with `length`
        and `begin`/`step`/`end` (see `chunk_loop`; WaveNet's is `wavenet_chunks.Body`).
        It must give `sample_step`'s samples; its test compares it with the plain body."""
        return None

    def _validate_conditions(self, conditions, per_step=False):
        """Return the conditions dict (possibly empty); raise ValueError on bad input."""
        return {}

    def _validate_x(self, x, name, allow_start=False):
        """Validate values `[B, T, *event]` (start_id allowed if asked); return them."""
        raise NotImplementedError

    def condition_specs(self, per_step=False):
        """`{name: tf.TensorSpec}` of the conditions this model takes (batch dim None), whole
        (as in `inputs`) or, with `per_step=True`, as `step` takes them. Exporters build
        signatures from it; models without conditions return {}."""
        return {}

    def x_spec(self):
        """`tf.TensorSpec` of `inputs["x"]` with dynamic batch and length (exporters)."""
        return tf.TensorSpec([None, None, *self.event_shape], self.x_dtype, contract.X)

    def step_conditions(self, conditions, state):
        """Whole conditions (as in `inputs`) -> the per-step conditions `step` takes."""
        return conditions

    def to_sequence(self, x):
        """Values in `inputs` layout -> generation order `[B, T, *event_shape]` (images:
        raster order). Identity for sequence models."""
        return x

    def params_to_sequence(self, params):
        """`model(inputs)` -> `[B, T, num_params]` in generation order."""
        return params

    def check_generation_length(self, conditions, total_steps):
        """Raise if the conditions cannot cover `total_steps` positions (hook; no-op)."""

    def decode(self, x):
        """Map sampled values to their natural form (audio, images, ids)."""
        return x

    #: True when sequences have a length: `log_prob` takes `lengths` int32 [B] and scores the
    #: first lengths[i] positions of row i (padding is not scored); the exported `log_prob`
    #: signature then has a `lengths` input. False for fixed-size data (images).
    scores_lengths = True

    #: True when the head samples a per-step stop flag ("the sequence ends after x_t"):
    #: `generate` then ends each row at its first flag (`stop_flags`), counts that step in
    #: `lengths` and pads the rest with zeros. False: rows end at `stop_token`, if given.
    samples_stop = False

    def stop_flags(self, x_t, params, noise, temperature):
        """[B] bool: which rows end after x_t (hook for models with `samples_stop`)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not sample stop flags; use `stop_token`.")

    # ----------------------------------------------------------------- properties
    @property
    def event_shape(self):
        """Shape of one position's value, e.g. () for a class id, (C,) for a pixel."""
        return self.head.event_shape

    @property
    def x_dtype(self):
        return tf.int32

    @property
    def noise_spec(self):
        return self.head.noise_spec

    # ----------------------------------------------------------------- protocol
    def state_spec(self, batch_size=None):
        spec = dict(self._state_spec(batch_size))
        spec[contract.INDEX_KEY] = tf.TensorSpec([batch_size], tf.int32, contract.INDEX_KEY)
        return spec

    def init_state(self, batch_size, conditions=None):
        conditions = self._validate_conditions(_as_dict(conditions))
        state = dict(self._init_state(batch_size, conditions))
        state[contract.INDEX_KEY] = tf.zeros([batch_size], tf.int32)
        return state

    def step(self, x_prev, state, conditions=None):
        x_prev = self._validate_x_prev(x_prev)
        state = self._validate_state(state)
        conditions = self._validate_conditions(_as_dict(conditions), per_step=True)
        params, new_state = self._step(x_prev, state, conditions)
        new_state = dict(new_state)
        new_state[contract.INDEX_KEY] = state[contract.INDEX_KEY] + 1
        return params, new_state

    def prefill(self, x_prefix, state, conditions=None):
        x_prefix = self._validate_x(x_prefix, "x_prefix", allow_start=True)
        state = self._validate_state(state)
        conditions = self._validate_conditions(_as_dict(conditions))
        params, new_state = self._prefill(x_prefix, state, conditions)
        new_state = dict(new_state)
        new_state[contract.INDEX_KEY] = state[contract.INDEX_KEY] + tf.shape(x_prefix)[1]
        return params, new_state

    def _prefill(self, x_prefix, state, conditions):
        """Default: scan `_step` over the prefix inside the graph."""
        return generation.scan_prefill(self, x_prefix, state, conditions)

    def sample_step(self, x_prev, state, noise, temperature=1.0, top_k=0, top_p=1.0,
                    conditions=None):
        params, new_state = self.step(x_prev, state, conditions)
        batch = tf.shape(params)[0]
        controls = generation.broadcast_controls(batch, temperature, top_k, top_p)
        x_t = self.head.sample(params, tf.convert_to_tensor(noise, tf.float32), *controls)
        return self._sample_to_x(x_t), params, new_state

    def sample_chunk(self, x_prev, state, noise, temperature=1.0, top_k=0, top_p=1.0,
                     conditions=None, prompt=None, prompt_length=None, stop_token=None):
        """K = noise.shape[1] sampling steps in one loop -> (out, new state).

        Equal to K `sample_step` calls that each feed back their `x_next`, from the same state
        and `noise [B, K, *noise_spec]`. `conditions`: as `sample_step` takes them, with
        `local_condition` stacked per position, `[B, K, ...]` (`chunk_conditions` builds
        them from whole conditions). `prompt` [B, P <= K, *event] with `prompt_length`
        int32[B]: row i's first prompt_length[i] positions are forced to the prompt (a prompt
        that continues into the chunk). `out`: `x` [B, K, *event] (after a row's end: the
        stop token, or zeros for models that sample their stop), `lengths` [B] (values before
        the row's end; K if it did not end) and `stop` int32[B] (1: the row ended here)."""
        return generation.sample_chunk(
            self, x_prev, state, noise, temperature, top_k, top_p, conditions, prompt,
            prompt_length, stop_token)

    def chunk_condition_specs(self):
        """`{name: tf.TensorSpec}` of `sample_chunk`'s conditions: the per-step ones, with a
        K axis after the batch for `local_condition` (it changes per position)."""
        return generation.chunk_condition_specs(self)

    def chunk_conditions(self, conditions, state, num_steps):
        """Whole conditions -> `sample_chunk`'s for the `num_steps` positions from `state`."""
        return generation.chunk_conditions(
            self, self._validate_conditions(_as_dict(conditions)), state, num_steps)

    def _sample_to_x(self, sample):
        """Adapt the head's sample to this model's per-position value (hook)."""
        return sample

    # ----------------------------------------------------------------- scoring
    def log_prob(self, inputs):
        """log p(x | c) in nats, [B]."""
        inputs = self._as_inputs(inputs)
        params = self(inputs, training=False)
        return self._log_prob_from_params(params, inputs)

    def _log_prob_from_params(self, params, inputs):
        per_position = self.head.log_prob(params, inputs[contract.X])
        per_position = tf.reshape(per_position, [tf.shape(per_position)[0], -1])
        if contract.LENGTHS in inputs:
            positions = tf.range(tf.shape(per_position)[1])[None, :]
            mask = positions < tf.cast(inputs[contract.LENGTHS], tf.int32)[:, None]
            per_position = tf.where(mask, per_position, tf.zeros_like(per_position))
        return tf.reduce_sum(per_position, axis=-1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative mean log-likelihood (nats per example): `fit` needs inputs only."""
        inputs = self._as_inputs(x)
        if y_pred is None:
            y_pred = self(inputs, training=training)
        loss = -tf.reduce_mean(self._log_prob_from_params(y_pred, inputs))
        for extra in self.losses:
            loss += tf.cast(extra, loss.dtype)
        # Under tf.distribute, Keras sums the replicas' gradients: scale each replica's mean
        # loss by 1 / replicas (as Keras' own losses do) so the update equals one device's.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss * (1.0 / replicas)
        return loss

    def compile(self, optimizer="adam", **kwargs):
        """As `keras.Model.compile`; `jit_compile` defaults to False. With
        `jit_compile=True`, `fit`/`evaluate`/`predict` check their data before the compiled
        step, since XLA drops the graph asserts (`input_checks`)."""
        self._generate_functions = {}
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=optimizer, **kwargs)

    @classmethod
    def from_preset(cls, path, compile=True):
        """Load a saved keras_ar model: a `.keras` file, or a directory holding `model.keras`
        (a Trainer output, a `keras-ar export --out` directory or one of its targets). Called
        on a subclass (`WaveNet.from_preset`), it checks the loaded class (`presets`)."""
        from keras_ar.models import presets

        return presets.load(path, expected=cls, compile=compile)

    def compile_from_config(self, config):
        """Recompile a loaded model as it was saved (optimizer, jit_compile...), so
        `keras.models.load_model` returns a model that resumes `fit` with its optimizer state
        (Keras restores the optimizer's variables after this)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def check_inputs(self, inputs):
        """Run the value checks `call` makes on `inputs` (ids in range, finite values and
        conditions, lengths); return the inputs dict, in a graph (e.g. `Dataset.map`) with
        every tensor gated on the checks. Eager: ValueError; graph: InvalidArgumentError."""
        return input_checks.gated(self._check_input_values, self._as_inputs(inputs))

    def _check_input_values(self, inputs):
        """The value checks of `call` on an inputs dict (hook; models whose `call` checks
        `x` otherwise than `_validate_x` override it)."""
        self._validate_x(inputs[contract.X], contract.X)
        self._validate_conditions(
            {k: inputs[k] for k in contract.CONDITION_KEYS if k in inputs})

    def _checked(self, data):
        return input_checks.checked_source(self, data) if self.jit_compile else data

    def fit(self, x=None, *args, **kwargs):
        if kwargs.get("validation_data") is not None:
            kwargs["validation_data"] = self._checked(kwargs["validation_data"])
        return super().fit(self._checked(x), *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        return super().evaluate(self._checked(x), *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return super().predict(self._checked(x), *args, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        return super().train_on_batch(self._checked(x), *args, **kwargs)

    def test_on_batch(self, x, *args, **kwargs):
        return super().test_on_batch(self._checked(x), *args, **kwargs)

    def predict_on_batch(self, x):
        return super().predict_on_batch(self._checked(x))

    def _as_inputs(self, inputs):
        if isinstance(inputs, dict):
            return dict(inputs)
        return {contract.X: inputs}

    # ----------------------------------------------------------------- generation
    def generate(self, batch_size=1, num_steps=None, seed=0, prompt=None, conditions=None,
                 temperature=1.0, top_k=0, top_p=1.0, stop_token=None, sampler=None,
                 jit_compile=False, prompt_length=None):
        """Sample `num_steps` new positions per row; returns {"x": ..., "lengths": [B]}.
        `num_steps` defaults to the model's `max_length` where it has one.

        The loop is one compiled `tf.while_loop` over `sample_step`; noise comes from a
        stateless RNG seeded by `seed`, so a seed reproduces its samples. Sampling controls
        are tensors: changing them does not retrace. `prompt` [B, P] primes the state with
        `prefill` (x then holds the values after it); with `prompt_length` int32[B], `prompt`
        [B, P <= num_steps, *event] is instead a per-row teacher-forced prefix laid out like
        x (positions t < prompt_length[i] keep the prompt, as the exported `generate`
        signature does; see `generate_from_noise`); `stop_token` ends each row at its first stop
        token (`lengths` counts the
        values before it; later positions hold the stop token). `sampler` (a
        `keras_ar.samplers` object or name) overrides temperature/top_k/top_p.
        `jit_compile=True` compiles the whole loop with XLA (about 9x faster per sample at
        batch 1 on CPU; floating-point rounding differs, so samples may differ from the
        uncompiled loop and from exported runtimes).
        """
        return generation.generate(
            self, self._generate_function(jit_compile), batch_size=batch_size,
            num_steps=num_steps, seed=seed, prompt=prompt,
            conditions=conditions, temperature=temperature, top_k=top_k, top_p=top_p,
            stop_token=stop_token, sampler=sampler, prompt_length=prompt_length)

    def _generate_function(self, jit_compile):
        """The cached `tf.function` that `generate` runs (one per `jit_compile` value)."""
        jit = bool(jit_compile)
        if jit not in self._generate_functions:
            self._generate_functions[jit] = tf.function(
                generation.noise_loop, reduce_retracing=True, jit_compile=jit)
        return self._generate_functions[jit]

    def generate_from_noise(self, noise, prompt=None, conditions=None, temperature=1.0,
                            top_k=0, top_p=1.0, stop_token=None, prompt_length=None):
        """The generation loop from explicit noise `[B, num_steps, noise_size]` (exportable);
        `prompt`/`prompt_length` as in `generate` (`generation.generate_from_noise`)."""
        return generation.generate_from_noise(
            self, noise, prompt=prompt, conditions=conditions, temperature=temperature,
            top_k=top_k, top_p=top_p, stop_token=stop_token, prompt_length=prompt_length)

    # ----------------------------------------------------------------- validation
    def _validate_state(self, state):
        if not isinstance(state, dict):
            raise ValueError(
                f"`state` must be the dict returned by init_state/step; received "
                f"{type(state).__name__}.")
        spec = self.state_spec()
        missing = sorted(set(spec) - set(state))
        extra = sorted(set(state) - set(spec))
        if missing or extra:
            raise ValueError(
                f"`state` keys do not match this model's state_spec: missing {missing}, "
                f"unexpected {extra}. Use the state returned by this model's init_state.")
        out = {}
        for key, value in state.items():
            value = tf.convert_to_tensor(value)
            expected = spec[key]
            if value.dtype != expected.dtype or not expected.shape.is_compatible_with(
                    value.shape):
                raise ValueError(
                    f"State entry `{key}` must be {expected.dtype.name}{expected.shape} "
                    f"(batch first); received {value.dtype.name}{value.shape}.")
            out[key] = value
        return out

    def _validate_x_prev(self, x_prev):
        x_prev = tf.convert_to_tensor(x_prev)
        validation.check_rank(x_prev, 1 + len(self.event_shape), "x_prev",
                              "[batch, *event_shape]")
        return self._validate_x(x_prev[:, None], "x_prev", allow_start=True)[:, 0]

    def get_config(self):
        config = super().get_config()
        if self.metadata:
            config["metadata"] = dict(self.metadata)
        return config


def _as_dict(conditions):
    if conditions is None:
        return {}
    if not isinstance(conditions, dict):
        raise ValueError(
            f"`conditions` must be a dict with keys among {contract.CONDITION_KEYS}; received "
            f"{type(conditions).__name__}.")
    return {k: v for k, v in conditions.items() if v is not None}
