"""The one generation loop: a chunk of K sampling steps, state in and state out.

Every way of generating runs this loop: `model.sample_chunk` (exported as the `sample_chunk`
signature), `generate` (one chunk of `num_steps` from `init_state`) and the host drivers in
`serving/` (a chunk per round trip). For j = 0 .. K - 1 (a `tf.while_loop`: TFLite WHILE,
ONNX Loop):

    c_j = conditions_at(j, state)                 (per-step conditions of position j)
    x_j, params, state = model.sample_step(x_prev, state, noise[:, j], controls, c_j)
    x_j = forced[:, j] where j < forced_length    (a prompt that continues into the chunk)
    x_prev = x_j

so one chunk of K equals K `sample_step` calls from the same state and noise, sample for
sample. Stopping: with `stop`, a row ends at its first sampled stop token (later positions
hold the token; `lengths` counts the values before it); a model with `samples_stop` ends a row
after the step whose `model.stop_flags(...)` fires (counted in `lengths`; later positions are
zeros). The loop leaves early once every row has ended. Outputs are written with equality
masks (`where`), never a TensorArray, so the loop converts to TFLite and ONNX.

A model may supply a faster body for many steps through one hook, `model._multi_step()`: an
object with `length` (steps per inner chunk, L), `begin(state) -> (carried, invariant)`,
`step(x_prev, carried, invariant, j, conditions) -> (params, carried)` and
`end(state, carried, invariant, count) -> state` (WaveNet's keeps its large dilation FIFOs out
of the inner loop: `wavenet_chunks`). The chunk then runs as nested loops, inner chunks of
L steps, and gives the plain body's samples (the state up to float summation order).
"""

import tensorflow as tf

from keras_ar import contract
from keras_ar.ops import validation


def run(model, x_prev, state, noise, controls, conditions_at, forced=None, stop=None,
        sampled_stop=False):
    """K = noise.shape[1] steps -> (x [B, K, *event], state, lengths [B], ended bool[B]).

    `controls`: (temperature f32[B], top_k i32[B], top_p f32[B]); `conditions_at(j, state)`:
    the per-step conditions of chunk position j; `forced`: None or (values [B, >= K, *event],
    count int32[B]) teacher-forcing positions j < count; `stop`: the stop token or None."""
    multi = model._multi_step()
    loop = _multi_loop if multi is not None else _plain_loop
    buffer, state, x_prev, done, lengths = loop(
        model, multi, x_prev, dict(state), noise, controls, conditions_at, forced, stop,
        sampled_stop)
    if sampled_stop or stop is None:
        return buffer, state, lengths, done
    hits = tf.equal(buffer, stop)
    if forced is not None:  # a stop token inside the forced prefix does not end the row
        hits = tf.logical_and(hits, _mask_like(hits, tf.logical_not(
            _before(forced[1], tf.shape(buffer)[1]))))
    before_stop = tf.equal(tf.cumsum(tf.cast(hits, tf.int32), axis=1), 0)
    lengths = tf.reduce_sum(tf.cast(before_stop, tf.int32), axis=1)
    filled = tf.where(before_stop, buffer, tf.fill(tf.shape(buffer), stop))
    return filled, state, lengths, done


def _plain_loop(model, multi, x_prev, state, noise, controls, conditions_at, forced, stop,
                sampled_stop):
    batch, steps = tf.shape(noise)[0], tf.shape(noise)[1]
    buffer = tf.zeros(output_shape(model, batch, steps), model.x_dtype)

    def body(j, x_prev, state, buffer, done, lengths):
        step_noise = tf.gather(noise, j, axis=1)
        # Inputs were validated before the loop; sampled values are in range by construction.
        with validation.runtime_checks(False):
            x_j, params, state = model.sample_step(
                x_prev, state, step_noise, *controls, conditions=conditions_at(j, state))
        x_j, done, lengths = _finish_step(model, j, x_prev, x_j, params, step_noise, controls,
                                          forced, stop, sampled_stop, done, lengths)
        return j + 1, x_j, state, write_row(buffer, j, x_j), done, lengths

    _, x_prev, state, buffer, done, lengths = tf.while_loop(
        _live(steps), body, (tf.constant(0), x_prev, state, buffer, *_fresh(batch, steps)))
    return buffer, state, x_prev, done, lengths


def _multi_loop(model, multi, x_prev, state, noise, controls, conditions_at, forced, stop,
                sampled_stop):
    """Outer loop over inner chunks of `multi.length` steps (`model._multi_step()`)."""
    inner_length = int(multi.length)
    batch, steps = tf.shape(noise)[0], tf.shape(noise)[1]
    buffer = tf.zeros(output_shape(model, batch, steps), model.x_dtype)
    inner_zeros = tf.zeros(output_shape(model, batch, inner_length), model.x_dtype)

    def inner_body(t0, invariant):
        def body(j, x_prev, carried, inner_out, done, lengths):
            t = t0 + j
            step_noise = tf.gather(noise, t, axis=1)
            with validation.runtime_checks(False):
                step_conditions = model._validate_conditions(
                    dict(conditions_at(t, carried) or {}), per_step=True)  # as `step` does
                params, new_carried = multi.step(x_prev, carried, invariant, j,
                                                 step_conditions)
                x_t = model._sample_to_x(model.head.sample(params, step_noise, *controls))
            new_carried = dict(new_carried)
            new_carried[contract.INDEX_KEY] = carried[contract.INDEX_KEY] + 1
            x_t, done, lengths = _finish_step(model, t, x_prev, x_t, params, step_noise,
                                              controls, forced, stop, sampled_stop, done,
                                              lengths)
            return j + 1, x_t, new_carried, write_row(inner_out, j, x_t), done, lengths

        def cond(j, x_prev, carried, inner_out, done, lengths):
            return tf.logical_and(tf.logical_and(j < inner_length, t0 + j < steps),
                                  tf.logical_not(tf.reduce_all(done)))
        return body, cond

    def outer_body(t0, x_prev, state, buffer, done, lengths):
        carried, invariant = multi.begin(state)
        carried = dict(carried)
        carried[contract.INDEX_KEY] = state[contract.INDEX_KEY]
        body, cond = inner_body(t0, invariant)
        count, x_prev, carried, inner_out, done, lengths = tf.while_loop(
            cond, body, (tf.constant(0), x_prev, carried, inner_zeros, done, lengths))
        new_state = dict(multi.end(state, carried, invariant, count))
        new_state[contract.INDEX_KEY] = carried[contract.INDEX_KEY]
        return t0 + count, x_prev, new_state, _write_rows(buffer, t0, count, inner_out), \
            done, lengths

    _, x_prev, state, buffer, done, lengths = tf.while_loop(
        _live(steps), outer_body,
        (tf.constant(0), x_prev, state, buffer, *_fresh(batch, steps)))
    return buffer, state, x_prev, done, lengths


def _fresh(batch, steps):
    """(done bool[B], lengths int32[B]) at the chunk's start."""
    return tf.zeros([batch], tf.bool), tf.fill([batch], steps)


def _live(steps):
    def cond(t, x_prev, state, buffer, done, lengths):
        return tf.logical_and(t < steps, tf.logical_not(tf.reduce_all(done)))
    return cond


def _finish_step(model, t, x_prev, x_t, params, step_noise, controls, forced, stop,
                 sampled_stop, done, lengths):
    """Position t's value after forcing and stopping -> (x_t, done, lengths)."""
    x_t.set_shape(x_prev.shape)  # a prompt's last column may carry a static batch size
    sampled = None  # [B] bool: t is past the row's forced prefix
    if forced is not None:
        sampled = tf.greater_equal(t, forced[1])
        x_t = tf.where(_mask_like(x_t, sampled), x_t, tf.gather(forced[0], t, axis=1))
    if sampled_stop:
        x_t = tf.where(_mask_like(x_t, done), tf.zeros_like(x_t), x_t)
        fired = tf.logical_and(_both(sampled, tf.logical_not(done)),
                               model.stop_flags(x_t, params, step_noise, controls[0]))
        lengths = tf.where(fired, t + 1, lengths)
        done = tf.logical_or(done, fired)
    elif stop is not None:
        x_t = tf.where(done, tf.fill(tf.shape(x_t), stop), x_t)
        done = tf.logical_or(done, _both(sampled, tf.equal(x_t, stop)))
    return x_t, done, lengths


def output_shape(model, batch, steps):
    return tf.concat([[batch, steps], tf.constant(model.event_shape, tf.int32)], 0)


def write_row(buffer, t, value):
    """`buffer` [B, T, ...] with row t (a scalar) replaced by `value` [B, ...]."""
    rank = buffer.shape.rank
    positions = tf.range(tf.shape(buffer)[1])
    mask = tf.reshape(tf.equal(positions, t), [1, -1] + [1] * (rank - 2))
    return tf.where(mask, tf.expand_dims(value, 1), buffer)


def _write_rows(buffer, t0, count, rows):
    """`buffer` [B, T, ...] with rows [t0, t0 + count) taken from `rows` [B, L, ...]."""
    length = tf.shape(rows)[1]
    positions = tf.range(tf.shape(buffer)[1])
    inside = tf.logical_and(positions >= t0, positions < t0 + count)
    values = tf.gather(rows, tf.clip_by_value(positions - t0, 0, length - 1), axis=1)
    mask = tf.reshape(inside, [1, -1] + [1] * (buffer.shape.rank - 2))
    return tf.where(mask, values, buffer)


def _before(length, steps):
    """bool [B, steps]: j < length[b]."""
    return tf.less(tf.expand_dims(tf.range(steps), 0), tf.expand_dims(length, 1))


def _mask_like(x, rows):
    """A [B] or [B, T] bool mask with trailing unit axes up to x's rank."""
    for _ in range(x.shape.rank - rows.shape.rank):
        rows = tf.expand_dims(rows, -1)
    return rows


def _both(a, b):
    return b if a is None else tf.logical_and(a, b)
