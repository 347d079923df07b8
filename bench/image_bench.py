"""Image sampling: cached `generate` vs naive whole-network recomputation per pixel.

Models: GatedPixelCNN 5 layers x 64 filters, 256 levels, on 28 x 28 x 1; PixelCNNPlusPlus
5 resnets per scale x 64 filters, 3 scales, 5 logistic mixtures, on 32 x 32 x 3. 16 images
per batch. Both paths are in-graph `tf.while_loop`s:

* cached: `model.generate` (row/FIFO caches; the step never looks at the whole image);
* naive: every pixel re-runs the teacher-forced network on the whole canvas and samples the
  pixel from its params (what a model without a cache must do).

Each naive step costs the same wherever the pixel is, so it is timed over one pixel and
extrapolated. Both cached models compute their rows-above stream once per row (at its first
pixel), so cached times cover whole rows: the first two rows for PixelCNN++ (extrapolated),
whole images for Gated PixelCNN. The same models at half the height and width show how the
per-pixel time
scales with the image size.
"""

import sys

import tensorflow as tf

from bench.common import best_time
from keras_ar.models import GatedPixelCNN, PixelCNNPlusPlus

BATCH = 16


def gated(size):
    return GatedPixelCNN(image_shape=(size, size, 1), num_levels=256, num_layers=5, filters=64)


def plus_plus(size):
    return PixelCNNPlusPlus(image_shape=(size, size, 3), num_mixtures=5, num_layers=5,
                            filters=64, num_scales=3, dropout=0.0)


def naive_generator(model):
    """tf.function(noise [B, T, N]) -> the first T pixels, re-running the network each."""
    height, width, channels = model.image_shape

    @tf.function
    def naive(noise):
        batch, steps = tf.shape(noise)[0], tf.shape(noise)[1]
        canvas = tf.zeros([batch, model.num_pixels, channels], tf.int32)
        ones, zeros = tf.ones([batch]), tf.zeros([batch], tf.int32)

        def body(t, canvas):
            image = tf.reshape(canvas, [batch, height, width, channels])
            params = model.params_to_sequence(model({"x": image}, training=False))
            params = tf.gather(params, t, axis=1)  # (B, P)
            x_t = model.head.sample(params, noise[:, t], ones, zeros, ones)  # (B, C)
            here = tf.reshape(tf.equal(tf.range(model.num_pixels), t), [1, -1, 1])
            return t + 1, tf.where(here, tf.expand_dims(x_t, 1), canvas)

        return tf.while_loop(lambda t, c: t < steps, body, (tf.constant(0), canvas))[1]

    return naive


def per_pixel(model, naive_pixels, cached_rows):
    """(naive, cached) seconds per pixel for a batch of BATCH images."""
    noise = tf.random.uniform([BATCH, naive_pixels, *model.noise_spec])
    naive = naive_generator(model)
    naive_seconds = best_time(lambda: naive(noise), repeats=1) / naive_pixels
    steps = (cached_rows or model.height) * model.width
    cached_seconds = best_time(
        lambda: model.generate(batch_size=BATCH, num_steps=steps), repeats=2) / steps
    return naive_seconds, cached_seconds


def run(quick=False):
    rows = []
    cases = [("GatedPixelCNN 5x64", gated, (28, 14) if not quick else (8, 16), None),
             ("PixelCNN++ 5x64, 3 scales", plus_plus, (32, 16) if not quick else (8, 16), 2)]
    for name, factory, sizes, cached_rows in cases:
        cached = {}
        for size in sizes:
            model = factory(size)
            naive_s, cached_s = per_pixel(model, 1, cached_rows)
            cached[size] = cached_s
            shape = "x".join(str(s) for s in model.image_shape)
            case = f"{name}, {BATCH} images {shape}"
            rows.append(_row(f"naive, {case}", "seconds per pixel", naive_s, "s"))
            rows.append(_row(f"cached, {case}", "seconds per pixel", cached_s, "s"))
            rows.append(_row(f"cached, {case}", "seconds per image batch (extrapolated)",
                             cached_s * model.num_pixels, "s"))
            rows.append(_row(f"cached vs naive, {case}", "speed-up", naive_s / cached_s, "x",
                             naive_s=naive_s, cached_s=cached_s))
            if hasattr(model, "step_cost"):
                rows.append(_row(f"cached, {case}", "conv columns per step",
                                 model.step_cost()["columns"], ""))
            print(rows[-5:], file=sys.stderr, flush=True)  # progress (runs are long)
        large, small = sizes
        rows.append(_row(f"cached, {name}", f"per-pixel time {large}x{large} / {small}x{small}",
                         cached[large] / cached[small], "x"))
    return rows


def _row(case, metric, value, unit, **fields):
    """A result row; `fields` (naive_s, cached_s: seconds per pixel of the batch) are what
    `bench/plots.py` reads."""
    return {"benchmark": "images_sampling", "case": case, "metric": metric,
            "value": float(value), "unit": unit, **fields}


if __name__ == "__main__":
    for r in run(quick=True):
        print(r)
