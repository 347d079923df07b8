"""WaveNet's multi-step body for the generation loop (`chunk_loop`), inner chunks of K steps.

`WaveNet._multi_step()` returns a `Body` when some blocks have dilation >= K
(`generation_chunk`) and there is no context stack; otherwise the loop runs `sample_step`.

Blocks with dilation d >= K ("large") read only inputs from before the chunk, so:

* begin: each large block's past taps for the K positions, one [B*K, R] x [R, 2R] matmul per
  tap (`CausalConv1D.past_taps`), stacked into an invariant [B, K, n_large, 2R]; the large
  FIFOs stay out of the inner loop;
* step j: the small blocks step on their FIFOs as in `_step`; a large block adds its past
  taps' row j to W_last h_t. Recorded per step: the input h_t of the first large block and
  the condition features c_t (K rows each, small), nothing per large block;
* end: the blocks from the first large one on are re-run over the chunk's K positions at once
  from the recorded inputs (large: past taps + W_last h, as in the steps; small ones after
  it: `call` with their FIFO from the chunk's start), which gives every large block's inputs
  to shift its FIFO by `count` (`shift_fifo`).

Per sample the inner loop moves the small FIFOs and two K-row records instead of every FIFO;
the re-run costs about one more pass of the large blocks, batched over K rows.
"""

import tensorflow as tf

from keras_ar.models import chunk_loop

CHUNK_H, CHUNK_C = "chunk_h", "chunk_c"


def chunked_blocks(model):
    """Indices of the blocks whose FIFOs stay out of the inner loop (dilation >= K);
    none when K <= 1 or the model has a context stack (its features are not re-run)."""
    k = model.generation_chunk
    if k <= 1 or model.context_stack is not None:
        return []
    return [i for i, block in enumerate(model.blocks)
            if block.buffer_length > 0 and block.dilation_rate >= k]


def begin(model, state):
    large = chunked_blocks(model)
    k = model.generation_chunk
    batch = tf.shape(state[f"buffer_{large[0]}"])[0]
    taps = [model.blocks[i].conv.past_taps(state[f"buffer_{i}"], k) for i in large]
    skip = {f"buffer_{i}" for i in large}
    carried = {key: value for key, value in state.items() if key not in skip}
    carried[CHUNK_H] = tf.zeros([batch, k, model.residual_channels])
    if model.condition_dim:
        carried[CHUNK_C] = tf.zeros([batch, k, model.condition_dim])
    return carried, {"taps": tf.stack(taps, axis=2)}  # (B, K, n_large, 2R)


def step(model, x_prev, carried, invariant, j, conditions):
    large = chunked_blocks(model)
    row = tf.unstack(tf.gather(invariant["taps"], j, axis=1), len(large), axis=1)
    params, new_state, inputs, condition = model._step_with(
        x_prev, carried, conditions, dict(zip(large, row)))
    new_state[CHUNK_H] = chunk_loop.write_row(
        carried[CHUNK_H], j, tf.cast(inputs[large[0]], tf.float32))
    if CHUNK_C in carried:
        new_state[CHUNK_C] = chunk_loop.write_row(
            carried[CHUNK_C], j, tf.cast(condition, tf.float32))
    return params, new_state


def end(model, state, carried, invariant, count):
    large = chunked_blocks(model)
    new_state = {k: v for k, v in carried.items() if k not in (CHUNK_H, CHUNK_C)}
    h = carried[CHUNK_H]  # (B, K, R): inputs of the first large block
    condition = carried.get(CHUNK_C)  # (B, K, D_c) or None
    taps = tf.unstack(invariant["taps"], len(large), axis=2)  # n_large x (B, K, 2R)
    for i in range(large[0], len(model.blocks)):
        block = model.blocks[i]
        if i in large:
            new_state[f"buffer_{i}"] = shift_fifo(
                state[f"buffer_{i}"], h, count)
            if i == len(model.blocks) - 1:
                break  # the last block's output is not needed
            h, _ = block.step_from_taps(h, condition, taps[large.index(i)])
        else:
            h, _, _ = block(h, condition, buffer=state[f"buffer_{i}"])
    return new_state


def shift_fifo(fifo, record, count):
    """The FIFO [B, L, C] after `count` more inputs, the first `count` rows of `record`
    [B, K, C] (count <= K): the last L rows of concat(fifo, record[:, :count])."""
    length = fifo.shape[1]
    joined = tf.concat([fifo, tf.cast(record, fifo.dtype)], axis=1)  # (B, L + K, C)
    return tf.gather(joined, count + tf.range(length), axis=1)


class Body:
    """The `chunk_loop` multi-step body of one WaveNet (`length` = its generation_chunk)."""

    def __init__(self, model):
        self.model = model
        self.length = int(model.generation_chunk)

    def begin(self, state):
        return begin(self.model, state)

    def step(self, x_prev, carried, invariant, j, conditions):
        return step(self.model, x_prev, carried, invariant, j, conditions)

    def end(self, state, carried, invariant, count):
        return end(self.model, state, carried, invariant, count)
