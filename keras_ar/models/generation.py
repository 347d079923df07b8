"""`generate`: one chunk of `num_steps` from `init_state` (`chunk_loop` is the loop).

    state = init_state(B, c)
    x_prev = start_id                       (or: prefill(start, prompt[:-1]); x_prev = prompt[-1])
    x, state = sample_chunk(x_prev, state, noise[:, :num_steps], controls, c)

so `generate` equals any sequence of chunks that covers the same noise (the state is passed
from one to the next). The noise is an input, so runtimes agree sample for sample; `generate`
draws it from a stateless seeded RNG outside the (maybe XLA-compiled) loop.
"""

import tensorflow as tf

from keras_ar import contract
from keras_ar.models import chunk_loop
from keras_ar.ops import validation


def broadcast_controls(batch, temperature, top_k, top_p):
    """Scalars or [B] tensors -> (temperature f32[B], top_k i32[B], top_p f32[B])."""
    def as_batch(value, dtype, name):
        value = tf.convert_to_tensor(value)
        if value.dtype != dtype:
            if value.dtype.is_floating and dtype.is_integer:
                raise ValueError(f"`{name}` must be an integer; received {value.dtype.name}.")
            value = tf.cast(value, dtype)
        if value.shape.rank not in (None, 0, 1):
            raise ValueError(f"`{name}` must be a scalar or [batch]; received {value.shape}.")
        return tf.broadcast_to(value, [batch])

    return (as_batch(temperature, tf.float32, contract.TEMPERATURE),
            as_batch(top_k, tf.int32, contract.TOP_K),
            as_batch(top_p, tf.float32, contract.TOP_P))


def start_tokens(model, batch):
    shape = tf.concat([[batch], tf.constant(model.event_shape, tf.int32)], 0)
    return tf.fill(shape, tf.cast(model.start_id, model.x_dtype))


def scan_prefill(model, x_prefix, state, conditions):
    """Step through `x_prefix` ([B, T, *event]) in a while loop; params [B, T, P]."""
    batch = tf.shape(x_prefix)[0]
    length = tf.shape(x_prefix)[1]
    params0 = tf.zeros([batch, length, model.head.num_params], tf.float32)

    def body(t, state, params_buf):
        x_prev = tf.gather(x_prefix, t, axis=1)
        step_conditions = model.step_conditions(conditions, state)
        params, new_state = model._step(x_prev, state, step_conditions)
        new_state = dict(new_state)
        new_state[contract.INDEX_KEY] = state[contract.INDEX_KEY] + 1
        # reshape, not [None, :, None]: a bool new-axis slice needs Flex in TFLite
        mask = tf.reshape(tf.equal(tf.range(length), t), [1, -1, 1])
        params_buf = tf.where(mask, tf.expand_dims(tf.cast(params, tf.float32), 1), params_buf)
        return t + 1, new_state, params_buf

    _, state, params = tf.while_loop(
        lambda t, *_: t < length, body, (tf.constant(0), dict(state), params0))
    state = dict(state)
    state.pop(contract.INDEX_KEY)  # the caller advances the index
    return params, state


def generate_from_noise(model, noise, prompt=None, conditions=None, temperature=1.0,
                        top_k=0, top_p=1.0, stop_token=None, prompt_length=None):
    """Run the loop from explicit noise [B, num_steps, noise_size] -> {x, lengths}.

    Without `prompt_length`, `prompt` [B, P, *event] is a prefix: it primes the state with
    `prefill` and `x` holds the `num_steps` values after it. With `prompt_length` int32[B],
    `prompt` [B, P <= num_steps, *event] is laid out like the output: row i's positions
    t < min(prompt_length[i], P) are taken from the prompt (teacher-forced; their noise is
    drawn and unused) and the rest are sampled, so `x` holds prompt and continuation and
    step t always uses noise[:, t] (the exported `generate` signatures' semantics).
    """
    noise = tf.convert_to_tensor(noise, tf.float32)
    batch = tf.shape(noise)[0]
    num_steps = tf.shape(noise)[1]
    controls = broadcast_controls(batch, temperature, top_k, top_p)
    state = model.init_state(batch, conditions)
    x_prev = start_tokens(model, batch)
    forced = None
    if prompt is not None and prompt_length is not None:
        forced = forced_prompt(model, prompt, prompt_length, batch, num_steps, noise.shape[1])
    elif prompt is not None:
        prompt = tf.convert_to_tensor(prompt)
        shifted = tf.concat([x_prev[:, None], prompt[:, :-1]], axis=1)
        _, state = model.prefill(shifted, state, conditions)
        x_prev = tf.cast(prompt[:, -1], model.x_dtype)
    elif prompt_length is not None:
        raise ValueError("`prompt_length` was given without a `prompt`; pass both (prompt "
                         "[B, P, *event], prompt_length int32[B]) or neither.")
    model.check_generation_length(conditions or {}, _total_steps(prompt, forced, noise))
    sampled_stop = bool(model.samples_stop)
    if sampled_stop and stop_token is not None:
        raise ValueError(
            f"This model samples its own stop flag; `stop_token` must be None; received "
            f"{stop_token!r}.")
    stop = None if stop_token is None else tf.cast(stop_token, model.x_dtype)
    x, _, lengths, _ = chunk_loop.run(
        model, x_prev, state, noise, controls,
        lambda j, state: model.step_conditions(conditions, state), forced, stop, sampled_stop)
    return {contract.X: x, contract.LENGTHS: lengths}


def _total_steps(prompt, forced, noise):
    """Positions generation reaches: a python int when the shapes are static."""
    steps = noise.shape[1] if noise.shape[1] is not None else tf.shape(noise)[1]
    if prompt is None or forced is not None:
        return steps
    prompt = tf.convert_to_tensor(prompt)
    return (prompt.shape[1] if prompt.shape[1] is not None else tf.shape(prompt)[1]) + steps


def forced_prompt(model, prompt, prompt_length, batch, num_steps, static_steps):
    """(prompt padded with zeros to [B, >= num_steps, *event], effective length int32[B])."""
    prompt = model._validate_x(tf.convert_to_tensor(prompt), contract.PROMPT)
    prompt = tf.cast(prompt, model.x_dtype)
    prompt_length = tf.convert_to_tensor(prompt_length)
    if not prompt_length.dtype.is_integer:
        raise ValueError(f"`prompt_length` must be int32[B]; received "
                         f"{prompt_length.dtype.name}{prompt_length.shape}.")
    if prompt_length.shape.rank not in (None, 0, 1):
        raise ValueError(f"`prompt_length` must be a scalar or int32[B]; received shape "
                         f"{prompt_length.shape}.")
    if None not in (prompt.shape[1], static_steps) and prompt.shape[1] > static_steps:
        raise ValueError(f"`prompt` covers {prompt.shape[1]} positions; at most num_steps="
                         f"{static_steps} (the output layout, prompt included) are expected.")
    length = tf.broadcast_to(tf.cast(prompt_length, tf.int32), [batch])
    length = tf.clip_by_value(length, 0, tf.shape(prompt)[1])
    pad_shape = tf.concat([[batch, num_steps], tf.constant(model.event_shape, tf.int32)], 0)
    padded = tf.concat([prompt, tf.zeros(pad_shape, model.x_dtype)], axis=1)
    return padded, length


def generate(model, function, batch_size, num_steps, seed, prompt, conditions, temperature,
             top_k, top_p, stop_token, sampler, prompt_length=None):
    """Seeded generation through `function`, the model's cached `tf.function` of
    `noise_loop` (`AutoregressiveModel._generate_function`). `num_steps` defaults to the
    model's `max_length` where it has one."""
    if num_steps is None:
        num_steps = getattr(model, "max_length", None)
    if num_steps is None or int(num_steps) < 1:
        raise ValueError(f"`num_steps` must be a positive integer; received {num_steps}.")
    if sampler is not None:
        from keras_ar import samplers

        controls = samplers.get(sampler).controls()
        temperature, top_k, top_p = (controls[contract.TEMPERATURE], controls[contract.TOP_K],
                                     controls[contract.TOP_P])
    if prompt is not None:
        prompt = tf.convert_to_tensor(prompt)
        batch_size = int(prompt.shape[0])
    prefix = 0 if prompt is None or prompt_length is not None else int(prompt.shape[1])
    model.check_generation_length(conditions or {}, prefix + int(num_steps))  # before tracing
    # drawn outside the (maybe XLA-compiled) loop: XLA's Philox with a run-time shape gives
    # other numbers than TensorFlow's kernel, and XLA must not change the samples
    noise = _SEEDED_NOISE(tf.constant(int(batch_size)), tf.constant(int(num_steps)),
                          int(model.noise_spec[0]), tf.constant(int(seed), tf.int32))
    return function(
        model, noise, prompt, conditions or None,
        tf.convert_to_tensor(temperature, tf.float32), tf.convert_to_tensor(top_k, tf.int32),
        tf.convert_to_tensor(top_p, tf.float32), stop_token,
        None if prompt_length is None else tf.convert_to_tensor(prompt_length, tf.int32))


def noise_loop(model, noise, prompt, conditions, temperature, top_k, top_p, stop_token,
                prompt_length=None):
    return generate_from_noise(model, noise, prompt=prompt, conditions=conditions,
                               temperature=temperature, top_k=top_k, top_p=top_p,
                               stop_token=stop_token, prompt_length=prompt_length)


def _seeded_noise(batch_size, num_steps, noise_size, seed):
    """Uniform noise [B, num_steps, noise_size] from `seed` (Philox, explicit: XLA's
    `auto_select` would pick another generator and change the samples)."""
    return tf.random.stateless_uniform(
        tf.stack([batch_size, num_steps, noise_size]), seed=tf.stack([seed, 0]), alg="philox")


_SEEDED_NOISE = tf.function(_seeded_noise)


def sample_chunk(model, x_prev, state, noise, temperature=1.0, top_k=0, top_p=1.0,
                 conditions=None, prompt=None, prompt_length=None, stop_token=None):
    """K = noise.shape[1] sampling steps from `state` -> (out, new state), `out` =
    {"x": [B, K, *event], "lengths": [B], "stop": int32[B]} (`model.sample_chunk`)."""
    x_prev = model._validate_x_prev(x_prev)
    state = model._validate_state(state)
    noise = tf.convert_to_tensor(noise, tf.float32)
    validation.check_rank(noise, 2 + len(model.noise_spec), contract.NOISE,
                          f"[batch, K, {', '.join(map(str, model.noise_spec))}]")
    if noise.shape[1] == 0:
        raise ValueError(f"`noise` has K = 0 positions (shape {noise.shape}); a chunk samples "
                         f"K >= 1 positions, one per noise row.")
    batch, steps = tf.shape(noise)[0], tf.shape(noise)[1]
    conditions = _chunk_conditions(model, conditions or {})
    _check_agreement(model, x_prev, state, noise, conditions, prompt)
    controls = broadcast_controls(batch, temperature, top_k, top_p)
    forced = None
    if prompt is not None and prompt_length is not None:
        forced = forced_prompt(model, prompt, prompt_length, batch, steps, noise.shape[1])
    elif prompt is not None or prompt_length is not None:
        raise ValueError("Pass `prompt` [B, P <= K, *event] and `prompt_length` int32[B] "
                         "together (forced values for the chunk's first positions) or neither.")
    if model.samples_stop and stop_token is not None:
        raise ValueError(f"This model samples its own stop flag; `stop_token` must be None; "
                         f"received {stop_token!r}.")
    stop = None if stop_token is None else tf.cast(stop_token, model.x_dtype)
    model.check_generation_length({}, tf.reduce_max(state[contract.INDEX_KEY]) + steps)

    def conditions_at(j, _):
        return {k: tf.gather(v, j, axis=1) if k == contract.LOCAL_CONDITION else v
                for k, v in conditions.items()} or None

    x, new_state, lengths, ended = chunk_loop.run(
        model, x_prev, state, noise, controls, conditions_at, forced, stop,
        model.samples_stop)
    stopped = ended if model.samples_stop else tf.less(lengths, steps)
    return {contract.X: x, contract.LENGTHS: lengths,
            contract.STOP: tf.cast(stopped, tf.int32)}, dict(new_state)


def chunk_condition_specs(model):
    """`model.chunk_condition_specs()`: the per-step specs, a K axis added to the local one."""
    specs = dict(model.condition_specs(per_step=True))
    local = specs.get(contract.LOCAL_CONDITION)
    if local is not None:
        shape = [local.shape[0], None] + local.shape[1:].as_list()
        specs[contract.LOCAL_CONDITION] = tf.TensorSpec(shape, local.dtype, local.name)
    return specs


def chunk_conditions(model, conditions, state, num_steps):
    """Validated whole conditions -> `sample_chunk`'s for `num_steps` positions from `state`
    (`model.step_conditions` at each position; local conditions stacked on axis 1)."""
    index = tf.convert_to_tensor(state[contract.INDEX_KEY])
    steps = [model.step_conditions(conditions, {**state, contract.INDEX_KEY: index + j})
             for j in range(int(num_steps))]
    out = dict(steps[0] or {})
    if contract.LOCAL_CONDITION in out:
        out[contract.LOCAL_CONDITION] = tf.stack(
            [s[contract.LOCAL_CONDITION] for s in steps], axis=1)
    return out


def _chunk_conditions(model, conditions):
    """Chunk conditions (per step; `local_condition` with a K axis) -> validated tensors."""
    if not isinstance(conditions, dict):
        raise ValueError(f"`conditions` must be a dict; received {type(conditions).__name__}.")
    conditions = {k: tf.convert_to_tensor(v) for k, v in conditions.items() if v is not None}
    local = conditions.get(contract.LOCAL_CONDITION)
    flat = dict(conditions)
    if local is not None:
        per_step = model.condition_specs(per_step=True).get(contract.LOCAL_CONDITION)
        rank = 1 + (per_step.shape.rank if per_step is not None else 1)
        validation.check_rank(local, rank, contract.LOCAL_CONDITION,
                              "[batch, K, ...]: the per-step local condition of each of the "
                              "chunk's K positions")
        flat[contract.LOCAL_CONDITION] = tf.reshape(
            local, tf.concat([[-1], tf.shape(local)[2:]], 0))  # (B * K, ...)
    validated = model._validate_conditions(flat, per_step=True)
    if local is not None:
        validated[contract.LOCAL_CONDITION] = tf.reshape(
            validated[contract.LOCAL_CONDITION], tf.shape(local))
    return validated


def _check_agreement(model, x_prev, state, noise, conditions, prompt):
    """Batch (and K) agreement of the chunk's inputs, checked on static shapes."""
    batch, steps = noise.shape[0], noise.shape[1]
    named = [("x_prev", x_prev, False)]
    named += [(contract.state_input_name(k), v, False) for k, v in sorted(state.items())]
    named += [(k, v, k == contract.LOCAL_CONDITION) for k, v in sorted(conditions.items())]
    if prompt is not None:
        named.append((contract.PROMPT, tf.convert_to_tensor(prompt), None))
    for name, value, has_k in named:
        shape = value.shape
        if batch is not None and shape.rank and shape[0] is not None and shape[0] != batch:
            raise ValueError(f"`{name}` has batch {shape[0]} (shape {shape}); `noise` "
                             f"{noise.shape} has batch {batch}: every input of a chunk must "
                             f"have the same batch.")
        k = None if not shape.rank or shape.rank < 2 else shape[1]
        if has_k and None not in (k, steps) and k != steps:
            raise ValueError(f"`{name}` covers {k} positions (shape {shape}); `noise` "
                             f"{noise.shape} has K = {steps}: one per chunk position expected.")
        if has_k is None and None not in (k, steps) and k > steps:
            raise ValueError(f"`{name}` covers {k} positions (shape {shape}); at most K = "
                             f"{steps} (the chunk's positions) are expected.")
