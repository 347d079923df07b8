"""The base class of every keras-ar model: one step protocol for scoring and generation."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_ar import contract
from keras_ar.heads.distribution_head import DistributionHead
from keras_ar.models import generation, input_checks, state_validation
from keras_ar.models.api_types import Conditions, State, TensorLike
from keras_ar.models.likelihood_training_model import LikelihoodTrainingModel
from keras_ar.samplers.sampler import Sampler


@keras.saving.register_keras_serializable(package="keras_ar")
class AutoregressiveModel(LikelihoodTrainingModel):
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

    Args:
        head: `keras_ar.heads.DistributionHead`. The distribution of one position given its
            params (`head.num_params` per position); built here if it is not built yet.
        start_id: int. The `x_prev` of the first step (t = 0). Default 0.
        metadata: dict or None. What decoding needs beyond the weights (sample rate, class
            names, a vocabulary): JSON values, saved with the model and copied into every
            exported manifest's `decoding`. Default None: no metadata.
        **kwargs: Passed to `keras.Model` (`name`, `dtype`, ...).

    Example:

    The protocol step by step on a tiny WaveNet (a subclass):

    >>> import numpy as np
    >>> from keras_ar.models import WaveNet
    >>> model = WaveNet(num_classes=8, dilations=[1, 2], residual_channels=4,
    ...                 skip_channels=4)
    >>> tuple(model.log_prob(np.zeros([2, 5], np.int32)).shape)
    (2,)
    >>> state = model.init_state(2)
    >>> sorted(state)
    ['buffer_0', 'buffer_1', 'index']
    >>> params, state = model.step(np.full([2], model.start_id), state)
    >>> tuple(params.shape), state["index"].numpy().tolist()
    ((2, 8), [1, 1])
    >>> x_next, params, state = model.sample_step([3, 5], state, np.full([2, 1], 0.5))
    >>> tuple(x_next.shape)
    (2,)
    >>> out, state = model.sample_chunk(x_next, state, np.full([2, 4, 1], 0.5, np.float32))
    >>> tuple(out["x"].shape), out["lengths"].numpy().tolist(), state["index"].numpy().tolist()
    ((2, 4), [4, 4], [6, 6])
    >>> out = model.generate(batch_size=2, num_steps=3, seed=0)
    >>> tuple(out["x"].shape), out["lengths"].numpy().tolist()
    ((2, 3), [3, 3])

    References:
        - van den Oord et al., "Pixel Recurrent Neural Networks", 2016, arXiv 1601.06759
          (the autoregressive factorisation, masked causal networks).
        - Paine et al., "Fast Wavenet Generation Algorithm", 2016, arXiv 1611.09482, and
          Ramachandran et al., "Fast Generation for Convolutional Autoregressive Models",
          2017, arXiv 1704.06001 (cached generation: the explicit state).
        - Fan et al., "Hierarchical Neural Story Generation", 2018, arXiv 1805.04833
          (`top_k`); Holtzman et al., "The Curious Case of Neural Text Degeneration", 2019,
          arXiv 1904.09751 (`top_p`).
    """

    def __init__(self, head: DistributionHead, start_id: int = 0,
                 metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
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

    def condition_specs(self, per_step: bool = False) -> dict[str, tf.TensorSpec]:
        """`{name: tf.TensorSpec}` of the conditions this model takes (batch dim None), whole
        (as in `inputs`) or, with `per_step=True`, as `step` takes them. Exporters build
        signatures from it; models without conditions return {}."""
        return {}

    def x_spec(self) -> tf.TensorSpec:
        """`tf.TensorSpec` of `inputs["x"]` with dynamic batch and length (exporters)."""
        return tf.TensorSpec([None, None, *self.event_shape], self.x_dtype, contract.X)

    def step_conditions(self, conditions: Conditions, state: State) -> Conditions:
        """Whole conditions (as in `inputs`) -> the per-step conditions `step` takes."""
        return conditions

    def to_sequence(self, x: TensorLike) -> tf.Tensor:
        """Values in `inputs` layout -> generation order `[B, T, *event_shape]` (images:
        raster order). Identity for sequence models."""
        return x

    def params_to_sequence(self, params: TensorLike) -> tf.Tensor:
        """`model(inputs)` -> `[B, T, num_params]` in generation order."""
        return params

    def check_generation_length(self, conditions: Conditions,
                                total_steps: int | tf.Tensor) -> None:
        """Raise if the conditions cannot cover `total_steps` positions (hook; no-op)."""

    def decode(self, x: TensorLike) -> tf.Tensor:
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

    def stop_flags(self, x_t: tf.Tensor, params: tf.Tensor, noise: tf.Tensor,
                   temperature: tf.Tensor) -> tf.Tensor:
        """[B] bool: which rows end after x_t (hook for models with `samples_stop`)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not sample stop flags; use `stop_token`.")

    # ----------------------------------------------------------------- properties
    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one position's value, e.g. () for a class id, (C,) for a pixel."""
        return self.head.event_shape

    @property
    def x_dtype(self) -> tf.DType:
        return tf.int32

    @property
    def noise_spec(self) -> tuple[int, ...]:
        return self.head.noise_spec

    # ----------------------------------------------------------------- protocol
    def state_spec(self, batch_size: int | None = None) -> dict[str, tf.TensorSpec]:
        spec = dict(self._state_spec(batch_size))
        spec[contract.INDEX_KEY] = tf.TensorSpec([batch_size], tf.int32, contract.INDEX_KEY)
        return spec

    def init_state(self, batch_size: int | tf.Tensor,
                   conditions: Conditions = None) -> State:
        """The generation state at index 0.

        Args:
            batch_size: int or int32 scalar tensor. Rows B.
            conditions: whole conditions, as in `inputs`, or None (models without them).

        Returns:
            The state: `{name: tensor [B, ...]}` (`state_spec(B)`), `index` all zeros.
        """
        conditions = self._validate_conditions(state_validation.as_dict(conditions))
        state = dict(self._init_state(batch_size, conditions))
        state[contract.INDEX_KEY] = tf.zeros([batch_size], tf.int32)
        return state

    def step(self, x_prev: TensorLike, state: State,
             conditions: Conditions = None) -> tuple[tf.Tensor, State]:
        """One position: params of p(x_t | x_<t, c) at t = `state["index"]`.

        Args:
            x_prev: `[B, *event_shape]`, x[:, t-1] (`start_id` at t = 0).
            state: as returned by `init_state`, `step`, `prefill` or `sample_chunk`.
            conditions: per-step conditions (`step_conditions` converts whole ones), or None.

        Returns:
            `(params [B, num_params], new state)`, params equal to `model(inputs)[:, t]`.
        """
        x_prev = self._validate_x_prev(x_prev)
        state = self._validate_state(state)
        conditions = self._validate_conditions(state_validation.as_dict(conditions),
                                               per_step=True)
        params, new_state = self._step(x_prev, state, conditions)
        new_state = dict(new_state)
        new_state[contract.INDEX_KEY] = state[contract.INDEX_KEY] + 1
        return params, new_state

    def prefill(self, x_prefix: TensorLike, state: State,
                conditions: Conditions = None) -> tuple[tf.Tensor, State]:
        """Many steps in one call: the same as `step` on `x_prefix[:, 0], x_prefix[:, 1], ...`.

        Args:
            x_prefix: `[B, T, *event_shape]`, the `x_prev` values of T steps (to prime the
                state with a prompt p: `[start_id, p_0, ..., p_{P-2}]`, then `x_prev = p_{P-1}`).
            state: the state to continue from (`init_state` or a later one).
            conditions: whole conditions, as in `inputs`, or None.

        Returns:
            `(params [B, T, num_params], new state)` with `index` advanced by T.
        """
        x_prefix = self._validate_x(x_prefix, "x_prefix", allow_start=True)
        state = self._validate_state(state)
        conditions = self._validate_conditions(state_validation.as_dict(conditions))
        params, new_state = self._prefill(x_prefix, state, conditions)
        new_state = dict(new_state)
        new_state[contract.INDEX_KEY] = state[contract.INDEX_KEY] + tf.shape(x_prefix)[1]
        return params, new_state

    def _prefill(self, x_prefix, state, conditions):
        """Default: scan `_step` over the prefix inside the graph."""
        return generation.scan_prefill(self, x_prefix, state, conditions)

    def sample_step(self, x_prev: TensorLike, state: State, noise: TensorLike,
                    temperature: TensorLike = 1.0, top_k: TensorLike = 0,
                    top_p: TensorLike = 1.0,
                    conditions: Conditions = None) -> tuple[tf.Tensor, tf.Tensor, State]:
        """`step`, then draw x_t from the head with uniform `noise` (deterministic given it).

        Args:
            x_prev, state, conditions: as in `step`.
            noise: float `[B, *noise_spec]` uniforms in [0, 1).
            temperature: scalar or `[B]`; logits / T (<= 0: greedy). Default 1.
            top_k: scalar or `[B]`; keep the k most likely classes (0, the default: all).
            top_p: scalar or `[B]`; keep the smallest set of mass >= p (1, the default: all).

        Returns:
            `(x_t [B, *event_shape], params [B, num_params], new state)`.
        """
        params, new_state = self.step(x_prev, state, conditions)
        batch = tf.shape(params)[0]
        controls = generation.broadcast_controls(batch, temperature, top_k, top_p)
        x_t = self.head.sample(params, tf.convert_to_tensor(noise, tf.float32), *controls)
        return self._sample_to_x(x_t), params, new_state

    def sample_chunk(self, x_prev: TensorLike, state: State, noise: TensorLike,
                     temperature: TensorLike = 1.0, top_k: TensorLike = 0,
                     top_p: TensorLike = 1.0, conditions: Conditions = None,
                     prompt: TensorLike | None = None, prompt_length: TensorLike | None = None,
                     stop_token: int | None = None) -> tuple[dict[str, tf.Tensor], State]:
        """K = noise.shape[1] sampling steps in one loop -> (out, new state).

        Equal to K `sample_step` calls that each feed back their `x_next`, from the same state
        and noise.

        Args:
            x_prev, state, temperature, top_k, top_p: as in `sample_step`.
            noise: float `[B, K, *noise_spec]` uniforms, one row of `sample_step` noise per
                step.
            conditions: as `sample_step` takes them, with `local_condition` stacked per
                position, `[B, K, ...]` (`chunk_conditions` builds them from whole ones).
            prompt: `[B, P <= K, *event]` values to force, or None (the default: none).
            prompt_length: int32 `[B]`: row i's first prompt_length[i] positions are forced
                to the prompt (a prompt that continues into the chunk).
            stop_token: a value that ends a row (counted out of `lengths`), or None.

        Returns:
            `(out, new state)`: `out["x"]` `[B, K, *event]` (after a row's end: the stop
            token, or zeros for models that sample their stop), `out["lengths"]` `[B]`
            (values before the row's end; K if it did not end) and `out["stop"]` int32 `[B]`
            (1: the row ended here).
        """
        return generation.sample_chunk(
            self, x_prev, state, noise, temperature, top_k, top_p, conditions, prompt,
            prompt_length, stop_token)

    def chunk_condition_specs(self) -> dict[str, tf.TensorSpec]:
        """`{name: tf.TensorSpec}` of `sample_chunk`'s conditions: the per-step ones, with a
        K axis after the batch for `local_condition` (it changes per position)."""
        return generation.chunk_condition_specs(self)

    def chunk_conditions(self, conditions: Conditions, state: State,
                         num_steps: int | tf.Tensor) -> dict[str, tf.Tensor]:
        """Whole conditions -> `sample_chunk`'s for the `num_steps` positions from `state`."""
        return generation.chunk_conditions(
            self, self._validate_conditions(state_validation.as_dict(conditions)), state,
            num_steps)

    def _sample_to_x(self, sample):
        """Adapt the head's sample to this model's per-position value (hook)."""
        return sample

    @classmethod
    def from_preset(cls, path: str | Any, compile: bool = True) -> AutoregressiveModel:
        """Load a saved keras_ar model: a `.keras` file, or a directory holding `model.keras`
        (a Trainer output, a `keras-ar export --out` directory or one of its targets). Called
        on a subclass (`WaveNet.from_preset`), it checks the loaded class (`presets`)."""
        from keras_ar.models import presets

        return presets.load(path, expected=cls, compile=compile)

    # ----------------------------------------------------------------- generation
    def generate(self, batch_size: int = 1, num_steps: int | None = None, seed: int = 0,
                 prompt: TensorLike | None = None, conditions: Conditions = None,
                 temperature: TensorLike = 1.0, top_k: TensorLike = 0,
                 top_p: TensorLike = 1.0, stop_token: int | None = None,
                 sampler: Sampler | str | dict | None = None, jit_compile: bool = False,
                 prompt_length: TensorLike | None = None) -> dict[str, tf.Tensor]:
        """Sample `num_steps` new positions per row, in one compiled `tf.while_loop` over
        `sample_step`. Sampling controls are tensors: changing them does not retrace.

        Args:
            batch_size: rows B (taken from `prompt` when one is given). Default 1.
            num_steps: positions to sample; None (default): the model's `max_length`.
            seed: int. Seeds the stateless RNG of the noise: a seed reproduces its samples.
            prompt: `[B, P, *event]` values that prime the state with `prefill` (`x` then
                holds the values after it); with `prompt_length`, `[B, P <= num_steps,
                *event]` laid out like `x` instead (see `prompt_length`). Default None.
            conditions: whole conditions, as in `inputs`, or None.
            temperature, top_k, top_p: scalars or `[B]`, as in `sample_step`.
            stop_token: ends each row at its first stop token (`lengths` counts the values
                before it; later positions hold the stop token). Default None.
            sampler: a `keras_ar.samplers` object or name; overrides temperature/top_k/top_p.
            jit_compile: compile the whole loop with XLA (about 9x faster per sample at batch
                1 on CPU; rounding differs, so samples may differ from the uncompiled loop and
                from exported runtimes). Default False.
            prompt_length: int32 `[B]`: positions t < prompt_length[i] of row i keep the
                prompt (teacher-forced), as the exported `generate` signature does; see
                `generate_from_noise`. Default None.

        Returns:
            `{"x": [B, num_steps, *event], "lengths": [B]}`.
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

    def generate_from_noise(self, noise: TensorLike, prompt: TensorLike | None = None,
                            conditions: Conditions = None, temperature: TensorLike = 1.0,
                            top_k: TensorLike = 0, top_p: TensorLike = 1.0,
                            stop_token: int | None = None,
                            prompt_length: TensorLike | None = None) -> dict[str, tf.Tensor]:
        """The generation loop from explicit noise `[B, num_steps, noise_size]` (exportable);
        the other arguments as in `generate` (`generation.generate_from_noise`)."""
        return generation.generate_from_noise(
            self, noise, prompt=prompt, conditions=conditions, temperature=temperature,
            top_k=top_k, top_p=top_p, stop_token=stop_token, prompt_length=prompt_length)

    # ----------------------------------------------------------------- validation
    def _validate_state(self, state):
        return state_validation.validate_state(self, state)

    def _validate_x_prev(self, x_prev):
        return state_validation.validate_x_prev(self, x_prev)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.metadata:
            config["metadata"] = dict(self.metadata)
        return config
