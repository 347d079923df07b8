"""The generation loop in chunks of K steps, for models whose big state changes slowly.

A WaveNet layer of dilation d >= K reads, at every step t of the chunk [t0, t0 + K), only
inputs from before t0 (its taps are t - d, t - 2d, ...). So, per chunk:

    carried, invariant = model._chunk_begin(state)      (e.g. the past taps of every
                                                        large layer, one matmul over K rows)
    for j in range(K):                                   (inner tf.while_loop)
        params, carried = model._chunk_step(x_prev, carried, invariant, j, c_t)
        x_t = sample(params, noise[:, t0 + j])           (exactly as `sample_step` samples)
    state = model._chunk_end(state, carried, invariant, count)   (large FIFOs shifted once)

The inner loop carries only the small state (the FIFOs of layers with d < K and K-row
records of what the chunk end needs; WaveNet's: see `wavenet_chunks`) and reads the big
FIFOs' contribution as a loop invariant. The runtimes' while loops pass an unchanged tensor
on without copying it (TFLite WHILE: 0.7 us per step for a 262 kB pass-through tensor here,
against 25-29 us to rewrite it), so the state rewritten per sample falls from every FIFO
(twice) to the small ones. The output row goes into a K-row buffer, copied into the
[B, num_steps] output once per chunk. Numbers: the step loop's samples, up to float
summation order (the large layers' past taps are summed apart from the current input's).
"""

import tensorflow as tf

from keras_ar import contract
from keras_ar.models import generation
from keras_ar.ops import validation


def loop(model, noise, x_prev, state, controls, conditions, forced, stop, sampled_stop):
    """Nested while loops -> (buffer [B, num_steps, *event], lengths [B])."""
    chunk = int(model._generation_chunk())
    batch, num_steps = tf.shape(noise)[0], tf.shape(noise)[1]
    buffer = tf.zeros(generation.output_shape(model, batch, num_steps), model.x_dtype)
    done = tf.zeros([batch], tf.bool)
    lengths = tf.fill([batch], num_steps)
    chunk_zeros = tf.zeros(generation.output_shape(model, batch, chunk), model.x_dtype)

    def inner(t0, invariant):
        def body(j, x_prev, carried, chunk_out, done, lengths):
            t = t0 + j
            step_noise = tf.gather(noise, t, axis=1)
            step_conditions = model.step_conditions(conditions, carried)
            with validation.runtime_checks(False):
                step_conditions = model._validate_conditions(
                    dict(step_conditions or {}), per_step=True)  # as `step` does
                params, new_carried = model._chunk_step(x_prev, carried, invariant, j,
                                                        step_conditions)
                x_t = model._sample_to_x(
                    model.head.sample(params, step_noise, *controls))
            new_carried = dict(new_carried)
            new_carried[contract.INDEX_KEY] = carried[contract.INDEX_KEY] + 1
            x_t, done, lengths = generation.finish_step(
                model, t, x_prev, x_t, params, step_noise, controls, forced, stop,
                sampled_stop, done, lengths)
            return (j + 1, x_t, new_carried, generation.write_row(chunk_out, j, x_t), done,
                    lengths)

        def cond(j, x_prev, carried, chunk_out, done, lengths):
            return tf.logical_and(tf.logical_and(j < chunk, t0 + j < num_steps),
                                  tf.logical_not(tf.reduce_all(done)))
        return body, cond

    def outer_body(t0, x_prev, state, buffer, done, lengths):
        carried, invariant = model._chunk_begin(state)
        carried = dict(carried)
        carried[contract.INDEX_KEY] = state[contract.INDEX_KEY]
        body, cond = inner(t0, invariant)
        count, x_prev, carried, chunk_out, done, lengths = tf.while_loop(
            cond, body, (tf.constant(0), x_prev, carried, chunk_zeros, done, lengths))
        new_state = dict(model._chunk_end(state, carried, invariant, count))
        new_state[contract.INDEX_KEY] = carried[contract.INDEX_KEY]
        buffer = _write_chunk(buffer, t0, count, chunk_out)
        return t0 + count, x_prev, new_state, buffer, done, lengths

    def outer_cond(t0, x_prev, state, buffer, done, lengths):
        return tf.logical_and(t0 < num_steps, tf.logical_not(tf.reduce_all(done)))

    _, _, _, buffer, _, lengths = tf.while_loop(
        outer_cond, outer_body, (tf.constant(0), x_prev, dict(state), buffer, done, lengths))
    return buffer, lengths


def _write_chunk(buffer, t0, count, chunk_out):
    """`buffer` [B, T, ...] with rows [t0, t0 + count) taken from `chunk_out` [B, K, ...]."""
    chunk = tf.shape(chunk_out)[1]
    positions = tf.range(tf.shape(buffer)[1])
    inside = tf.logical_and(positions >= t0, positions < t0 + count)
    values = tf.gather(chunk_out, tf.clip_by_value(positions - t0, 0, chunk - 1), axis=1)
    mask = tf.reshape(inside, [1, -1] + [1] * (buffer.shape.rank - 2))
    return tf.where(mask, values, buffer)


def shift_fifo(fifo, record, count):
    """The FIFO [B, L, C] after `count` more inputs, the first `count` rows of `record`
    [B, K, C] (count <= K): the last L rows of concat(fifo, record[:, :count])."""
    length = fifo.shape[1]
    joined = tf.concat([fifo, tf.cast(record, fifo.dtype)], axis=1)  # (B, L + K, C)
    return tf.gather(joined, count + tf.range(length), axis=1)
