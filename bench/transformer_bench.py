"""CausalTransformer generation: KV-cached loop vs full recomputation, and raw tokens/s.

* 4 layers x 256 wide, 1024 context: `generate` of 1024 tokens (cached) vs a loop that
  runs the whole teacher-forced network over the 1024-token buffer for every token (what a
  model without a cache does at full context; its per-token cost is constant, so it is
  measured over fewer tokens), batch 1 and 8.
* 2 layers x 128 wide, vocab 256, 256 new tokens, batch 1: `generate` tokens/s, plain and
  XLA (`jit_compile=True`).
* `step` latency: eager vs `tf.function` vs `jit_compile=True`.
"""

import tensorflow as tf

from bench.common import best_time
from keras_ar.models import CausalTransformer


def naive_generator(model, context):
    @tf.function(reduce_retracing=True)
    def naive(noise):
        batch, steps = tf.shape(noise)[0], tf.shape(noise)[1]
        tokens = tf.zeros([batch, context], tf.int32)

        def body(t, tokens):
            params = model({"x": tokens}, training=False)  # (B, context, V)
            mask = tf.cast(tf.equal(tf.range(context), t), params.dtype)[None, :, None]
            last = tf.reduce_sum(params * mask, axis=1)
            ones = tf.ones([batch])
            x_t = model.head.sample(last, noise[:, t], ones, tf.zeros([batch], tf.int32), ones)
            write = tf.equal(tf.range(context), t + 1)[None, :]
            new = tf.where(write, x_t[:, None], tokens)
            new.set_shape(tokens.shape)
            return t + 1, new

        return tf.while_loop(lambda t, _: t < steps, body, (tf.constant(0), tokens))[1]

    return naive


def run(quick=False):
    rows = []
    context = 256 if quick else 1024
    big = CausalTransformer(vocab_size=256, num_layers=4, num_heads=4, hidden_dim=256,
                            max_length=context)
    naive = naive_generator(big, context)
    for batch in (1, 8):
        cached = best_time(lambda: big.generate(batch_size=batch, num_steps=context),
                           repeats=1) / context
        naive_steps = 8 if quick else 16
        noise = tf.random.uniform([batch, naive_steps, 1])
        recompute = best_time(lambda: naive(noise), repeats=1) / naive_steps
        case = f"4x256, context {context}, batch {batch}"
        rows.append(_row(f"{case}, cached", "tokens/s (all rows)", batch / cached, "tokens/s"))
        rows.append(_row(f"{case}, full recompute", "tokens/s (all rows)", batch / recompute,
                         "tokens/s"))
        rows.append(_row(case, "cached speed-up", recompute / cached, "x", batch=batch,
                         naive_s=recompute, cached_s=cached))
    small = CausalTransformer(vocab_size=256, num_layers=2, num_heads=4, hidden_dim=128,
                              max_length=256)
    for jit in (False, True):
        seconds = best_time(lambda: small.generate(batch_size=1, num_steps=256,
                                                   jit_compile=jit), repeats=3)
        rows.append(_row(f"2x128, 256 tokens, batch 1, generate{' (XLA)' if jit else ''}",
                         "tokens/s", 256 / seconds, "tokens/s"))
    rows.extend(step_latency(small, quick))
    return rows


def step_latency(model, quick):
    state = model.init_state(1)
    x = tf.constant([3])
    calls = 20 if quick else 200
    rows = []
    for name, fn, n in (("eager", model.step, max(5, calls // 20)),
                        ("tf.function", tf.function(model.step), calls),
                        ("jit_compile=True", tf.function(model.step, jit_compile=True), calls)):
        seconds = best_time(lambda: [fn(x, state) for _ in range(n)], repeats=2)
        rows.append(_row(f"2x128 step latency, batch 1, {name}", "ms per step",
                         1000 * seconds / n, "ms"))
    return rows


def _row(case, metric, value, unit, **fields):
    """A result row; `fields` (batch, naive_s, cached_s: seconds per step of the batch) are
    what `bench/plots.py` reads."""
    return {"benchmark": "transformer", "case": case, "metric": metric, "value": float(value),
            "unit": unit, **fields}
