"""WaveNet generation: cached step loop vs naive recomputation of the receptive field.

Model: 2 stacks x 10 layers (dilations 1..512), kernel 2, 64 residual channels (receptive
field 2047), 256-way mu-law categorical head. Both paths are in-graph `tf.while_loop`s:

* cached: `model.generate` (FIFO buffers, O(layers) per sample);
* naive: each sample runs the full teacher-forced network over the last 2047 inputs and
  reads the last position (what a model without a cache must do).

The naive path costs the same for every sample once the window is full, so its per-sample
time is measured over fewer samples. A model that does not know its receptive field re-runs
the whole prefix instead: its step at position L (one forward pass over L inputs) is timed
at every generated length L, next to the cached per-sample time over L samples (the plot of
time against length, `bench/plots.py`). `jit_compile=True` generation is timed in full
runs only (a quick run keeps to the plain graph). Also: per-step latency of `model.step` eager vs
`tf.function` vs `jit_compile=True` for a 10 x 64 WaveNet.
"""

import tensorflow as tf

from bench.common import best_time
from keras_ar.models import WaveNet


def big_wavenet():
    return WaveNet(num_classes=256, dilations=[2 ** i for i in range(10)] * 2, kernel_size=2,
                   residual_channels=64, skip_channels=128)


def naive_generator(model):
    rf = model.receptive_field

    @tf.function(reduce_retracing=True)
    def naive(noise):
        batch, steps = tf.shape(noise)[0], tf.shape(noise)[1]
        window = tf.fill([batch, rf], model.num_classes // 2)

        def body(t, window):
            params = model({"x": window}, training=False)[:, -1]
            ones = tf.ones([batch])
            x_t = model.head.sample(params, noise[:, t], ones, tf.zeros([batch], tf.int32), ones)
            return t + 1, tf.concat([window[:, 1:], x_t[:, None]], axis=1)

        return tf.while_loop(lambda t, w: t < steps, body, (tf.constant(0), window))[1]

    return naive


def run(quick=False):
    rows = []
    model = big_wavenet()
    assert model.receptive_field == 2047
    naive = naive_generator(model)
    lengths = [2000, 4000, 8000, 16000] if not quick else [200, 400, 800]
    for batch in (1, 16):
        naive_steps = (20 if batch == 1 else 5) if not quick else 3
        noise = tf.random.uniform([batch, naive_steps, 1])
        naive_per_sample = best_time(lambda: naive(noise), repeats=1) / naive_steps
        rows.append(_row(f"naive (RF recompute), batch {batch}", "seconds per sample",
                         naive_per_sample, "s", path="naive, last 2047 inputs", batch=batch))
        rows.extend(_prefix_rows(model, batch, lengths))
        for jit in (False,) if quick else (False, True):  # XLA: full runs only
            rows.extend(_cached_rows(model, batch, lengths, jit, naive_per_sample))
    rows.extend(step_latency(quick))
    return rows


def _prefix_rows(model, batch, lengths):
    """The whole-prefix naive step at each position L: one forward pass over L inputs."""
    last_params = tf.function(lambda x: model({"x": x}, training=False)[:, -1],
                              reduce_retracing=True)
    rows = []
    for length in lengths:
        x = tf.fill([batch, length], model.num_classes // 2)
        seconds = best_time(lambda: last_params(x), repeats=2)
        rows.append(_row(f"naive (whole-prefix recompute), batch {batch}, step at {length}",
                         "seconds per sample", seconds, "s", path="naive, whole prefix",
                         batch=batch, length=length))
    return rows


def _cached_rows(model, batch, lengths, jit, naive_per_sample):
    label = "cached generate" + (" (XLA)" if jit else "")
    rows, per_sample = [], {}
    for length in lengths:
        seconds = best_time(
            lambda: model.generate(batch_size=batch, num_steps=length, jit_compile=jit),
            repeats=1 if length > 4000 else 2)
        per_sample[length] = seconds / length
        case = f"{label}, batch {batch}, {length} samples"
        rows.append(_row(case, "seconds per sample", per_sample[length], "s", path=label,
                         batch=batch, length=length))
        rows.append(_row(case, "samples/s (all rows)", batch * length / seconds, "samples/s"))
    longest = lengths[-1]
    rows.append(_row(f"{label} vs naive, batch {batch}, {longest} samples", "speed-up",
                     naive_per_sample / per_sample[longest], "x", path=label, batch=batch,
                     naive_s=naive_per_sample, cached_s=per_sample[longest]))
    rows.append(_row(f"{label} per-sample time, batch {batch}",
                     f"ratio {longest} / {lengths[0]} samples",
                     per_sample[longest] / per_sample[lengths[0]], "x"))
    return rows


def step_latency(quick):
    model = WaveNet(num_classes=256, dilations=[2 ** i for i in range(10)],
                    residual_channels=64, skip_channels=64)
    state = model.init_state(1)
    x = tf.constant([3])
    graph = tf.function(model.step)
    xla = tf.function(model.step, jit_compile=True)
    calls = 20 if quick else 200
    rows = []
    for name, fn, n in (("eager", model.step, max(5, calls // 20)), ("tf.function", graph, calls),
                        ("jit_compile=True", xla, calls)):
        seconds = best_time(lambda: [fn(x, state) for _ in range(n)], repeats=2)
        rows.append(_row(f"step latency 10x64, batch 1, {name}", "ms per step",
                         1000 * seconds / n, "ms"))
    return rows


def _row(case, metric, value, unit, **fields):
    """A result row; `fields` (path, batch, length, ...) are what `bench/plots.py` reads."""
    return {"benchmark": "wavenet", "case": case, "metric": metric, "value": float(value),
            "unit": unit, **fields}


if __name__ == "__main__":
    for r in run(quick=True):
        print(r)
