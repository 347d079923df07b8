import numpy as np
import pytest
import tensorflow as tf

from keras_ar.layers import MaskedConv2D

H, W = 4, 5


def grads(layer, x):
    x = tf.Variable(x)
    with tf.GradientTape(persistent=True) as tape:
        y = layer(x)
        outs = {(i, j, o): y[0, i, j, o] for i in range(H) for j in range(W)
                for o in range(layer.filters)}
    return {k: np.abs(tape.gradient(v, x).numpy()[0]) > 0 for k, v in outs.items()}


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_raster_and_colour_masks(mask_type):
    layer = MaskedConv2D(6, 3, mask_type, num_channels=3)
    x = np.random.default_rng(0).normal(size=(1, H, W, 3)).astype("float32")
    for (i, j, o), dep in grads(layer, x).items():
        flat = dep.reshape(H * W, 3)
        p, group = i * W + j, o // 2
        assert not flat[p + 1:].any()
        allowed = np.arange(3) < group if mask_type == "A" else np.arange(3) <= group
        assert not flat[p, ~allowed].any() and flat[p, allowed].all()


def test_mask_is_a_constant_never_written_into_the_weights():
    layer = MaskedConv2D(4, 3, "A")
    layer.build((None, H, W, 2))
    layer.kernel.assign(tf.ones_like(layer.kernel))
    layer(tf.ones((1, H, W, 2)))
    assert np.all(layer.kernel.numpy() == 1.0)
    assert len(layer.weights) == 2  # kernel and bias only


@pytest.mark.parametrize("kernel, mask_type, channels", [
    (3, "A", 1), (5, "B", 3), ((1, 3), "B", 1), ((3, 5), "A", 3), (1, "B", 3)])
def test_step_with_fifo_equals_the_convolution(kernel, mask_type, channels):
    layer = MaskedConv2D(6, kernel, mask_type, num_channels=channels)
    x = np.random.default_rng(1).normal(size=(2, H, W, 3)).astype("float32")
    full = layer(x).numpy().reshape(2, H * W, 6)
    flat = x.reshape(2, H * W, 3)
    fifo = tf.zeros([2, layer.fifo_length(W), 3])
    for p in range(H * W):
        y, fifo = layer.step(flat[:, p], fifo, tf.fill([2], p), W)
        np.testing.assert_allclose(y.numpy(), full[:, p], atol=1e-5)


@pytest.mark.parametrize("kernel, mask_type, channels", [
    (3, "B", 1), (7, "A", 1), (5, "A", 3), ((1, 3), "A", 3), ((1, 5), "B", 1), ((3, 1), "B", 1),
    (1, "B", 3)])
def test_live_tap_convolution_equals_the_masked_full_kernel(kernel, mask_type, channels):
    """`call` runs only the rows/columns the mask keeps; it must equal the textbook masked
    convolution conv2d(x, W * M, SAME), and the masked weights must get zero gradient."""
    layer = MaskedConv2D(6, kernel, mask_type, num_channels=channels)
    x = tf.constant(np.random.default_rng(2).normal(size=(2, H, W, 3)).astype("float32"))
    layer.build(x.shape)
    layer.kernel.assign(np.random.default_rng(3).normal(size=layer.kernel.shape))
    layer.bias.assign(np.random.default_rng(4).normal(size=layer.bias.shape))
    textbook = tf.nn.conv2d(x, layer.kernel * layer.mask, 1, "SAME") + layer.bias
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_sum(y * y)
    np.testing.assert_allclose(y.numpy(), textbook.numpy(), atol=1e-5)
    grad = tape.gradient(loss, layer.kernel).numpy()
    assert not grad[layer.mask == 0].any() and grad[layer.mask == 1].any()


def test_config_round_trip_and_errors():
    layer = MaskedConv2D(6, (3, 5), "A", num_channels=3, num_splits=2)
    clone = MaskedConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="odd"):
        MaskedConv2D(4, 2)
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2D(4, 3, "C")
    with pytest.raises(ValueError, match="equal parts"):
        MaskedConv2D(4, 3, num_channels=3, num_splits=2)
