"""The generation loop every model shares: in-graph, cached, noise in, state passed along.

    state = init_state(B, c)
    x_prev = start_id                       (or: prefill(start, prompt[:-1]); x_prev = prompt[-1])
    for t in range(num_steps):              (a tf.while_loop: TFLite WHILE, ONNX Loop)
        x_t, _, state = sample_step(x_prev, state, noise[:, t], controls, c_t)
        x_prev = x_t

The output buffer is written with an equality mask (`where`), never a TensorArray, so the loop
converts to TFLite and ONNX; the noise is an input, so runtimes agree sample for sample.

Stopping: token models end a row at its first `stop_token` (not counted in `lengths`); a model
with `samples_stop` (a head that samples "the sequence ends after x_t") ends a row at the first
step whose `model.stop_flags(x_t, params, noise_t, temperature)` fires, counts that step in
`lengths`, and pads the rest of the row with zeros.
"""

import tensorflow as tf

from keras_ar import contract
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


def write_row(buffer, t, value):
    """`buffer` [B, T, ...] with row t (a scalar) replaced by `value` [B, ...]."""
    rank = buffer.shape.rank
    positions = tf.range(tf.shape(buffer)[1])
    mask = tf.reshape(tf.equal(positions, t), [1, -1] + [1] * (rank - 2))
    return tf.where(mask, tf.expand_dims(value, 1), buffer)


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
        forced = _forced_prompt(model, prompt, prompt_length, batch, num_steps, noise.shape[1])
    elif prompt is not None:
        prompt = tf.convert_to_tensor(prompt)
        shifted = tf.concat([x_prev[:, None], prompt[:, :-1]], axis=1)
        _, state = model.prefill(shifted, state, conditions)
        x_prev = tf.cast(prompt[:, -1], model.x_dtype)
    elif prompt_length is not None:
        raise ValueError("`prompt_length` was given without a `prompt`; pass both (prompt "
                         "[B, P, *event], prompt_length int32[B]) or neither.")
    prefix_length = 0 if prompt is None or forced is not None else tf.shape(prompt)[1]
    model.check_generation_length(conditions or {}, prefix_length + num_steps)
    sampled_stop = bool(getattr(model, "samples_stop", False))
    if sampled_stop and stop_token is not None:
        raise ValueError(
            f"This model samples its own stop flag; `stop_token` must be None; received "
            f"{stop_token!r}.")
    stop = None if stop_token is None else tf.cast(stop_token, model.x_dtype)
    buffer, lengths = _loop(model, noise, x_prev, state, controls, conditions, forced, stop,
                            sampled_stop)
    if sampled_stop:
        return {contract.X: buffer, contract.LENGTHS: lengths}
    if stop is None:
        return {contract.X: buffer, contract.LENGTHS: tf.fill([batch], num_steps)}
    hits = tf.equal(buffer, stop)
    if forced is not None:  # a stop token inside the prompt does not end the row
        hits = tf.logical_and(hits, _mask_like(hits, tf.logical_not(_prompt_positions(
            forced[1], num_steps))))
    before_stop = tf.equal(tf.cumsum(tf.cast(hits, tf.int32), axis=1), 0)
    lengths = tf.reduce_sum(tf.cast(before_stop, tf.int32), axis=1)
    filled = tf.where(before_stop, buffer, tf.fill(tf.shape(buffer), stop))
    return {contract.X: filled, contract.LENGTHS: lengths}


def _forced_prompt(model, prompt, prompt_length, batch, num_steps, static_steps):
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


def _prompt_positions(length, num_steps):
    """bool [B, num_steps]: t < length[b]."""
    return tf.less(tf.expand_dims(tf.range(num_steps), 0), tf.expand_dims(length, 1))


def _mask_like(x, rows):
    """A [B] or [B, T] bool mask with trailing unit axes up to x's rank."""
    for _ in range(x.shape.rank - rows.shape.rank):
        rows = tf.expand_dims(rows, -1)
    return rows


def _both(a, b):
    return b if a is None else tf.logical_and(a, b)


def _loop(model, noise, x_prev, state, controls, conditions, forced, stop, sampled_stop):
    """The in-graph while loop -> (buffer [B, num_steps, *event], lengths [B]).

    A model with a generation chunk (`model._generation_chunk()`, e.g. WaveNet's) runs the
    nested chunked loop of `chunked_generation` instead: same samples, less state traffic."""
    if model._generation_chunk():
        from keras_ar.models import chunked_generation

        return chunked_generation.loop(model, noise, x_prev, state, controls, conditions,
                                       forced, stop, sampled_stop)
    batch, num_steps = tf.shape(noise)[0], tf.shape(noise)[1]
    buffer = tf.zeros(output_shape(model, batch, num_steps), model.x_dtype)
    done = tf.zeros([batch], tf.bool)
    lengths = tf.fill([batch], num_steps)

    def body(t, x_prev, state, buffer, done, lengths):
        step_noise = tf.gather(noise, t, axis=1)
        step_conditions = model.step_conditions(conditions, state)
        # Inputs were validated before the loop; sampled values are in range by construction.
        with validation.runtime_checks(False):
            x_t, params, state = model.sample_step(
                x_prev, state, step_noise, *controls, conditions=step_conditions)
        x_t, done, lengths = finish_step(model, t, x_prev, x_t, params, step_noise, controls,
                                         forced, stop, sampled_stop, done, lengths)
        return t + 1, x_t, state, write_row(buffer, t, x_t), done, lengths

    def cond(t, x_prev, state, buffer, done, lengths):
        return tf.logical_and(t < num_steps, tf.logical_not(tf.reduce_all(done)))

    _, _, _, buffer, _, lengths = tf.while_loop(
        cond, body, (tf.constant(0), x_prev, state, buffer, done, lengths))
    return buffer, lengths


def output_shape(model, batch, steps):
    return tf.concat([[batch, steps], tf.constant(model.event_shape, tf.int32)], 0)


def finish_step(model, t, x_prev, x_t, params, step_noise, controls, forced, stop,
                sampled_stop, done, lengths):
    """Step t's sample after prompt forcing and stopping -> (x_t, done, lengths)."""
    x_t.set_shape(x_prev.shape)  # a prompt's last column may carry a static batch size
    sampled = None  # [B] bool: t is past the row's prompt
    if forced is not None:
        sampled = tf.greater_equal(t, forced[1])
        x_t = tf.where(_mask_like(x_t, sampled), x_t, tf.gather(forced[0], t, axis=1))
    if sampled_stop:
        rank = x_t.shape.rank
        x_t = tf.where(tf.reshape(done, [-1] + [1] * (rank - 1)), tf.zeros_like(x_t), x_t)
        fired = tf.logical_and(_both(sampled, tf.logical_not(done)),
                               model.stop_flags(x_t, params, step_noise, controls[0]))
        lengths = tf.where(fired, t + 1, lengths)
        done = tf.logical_or(done, fired)
    elif stop is not None:
        x_t = tf.where(done, tf.fill(tf.shape(x_t), stop), x_t)
        done = tf.logical_or(done, _both(sampled, tf.equal(x_t, stop)))
    return x_t, done, lengths


def generate(model, batch_size, num_steps, seed, prompt, conditions, temperature, top_k,
             top_p, stop_token, sampler, jit_compile=False, prompt_length=None):
    """Seeded generation through one cached `tf.function` per model."""
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
    if model._generate_fn is None or model._generate_jit != bool(jit_compile):
        model._generate_fn = tf.function(
            _noise_loop, reduce_retracing=True, jit_compile=bool(jit_compile))
        model._generate_jit = bool(jit_compile)
    # drawn outside the (maybe XLA-compiled) loop: XLA's Philox with a run-time shape gives
    # other numbers than TensorFlow's kernel, and XLA must not change the samples
    noise = _SEEDED_NOISE(tf.constant(int(batch_size)), tf.constant(int(num_steps)),
                          int(model.noise_spec[0]), tf.constant(int(seed), tf.int32))
    return model._generate_fn(
        model, noise, prompt, conditions or None,
        tf.convert_to_tensor(temperature, tf.float32), tf.convert_to_tensor(top_k, tf.int32),
        tf.convert_to_tensor(top_p, tf.float32), stop_token,
        None if prompt_length is None else tf.convert_to_tensor(prompt_length, tf.int32))


def _noise_loop(model, noise, prompt, conditions, temperature, top_k, top_p, stop_token,
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
