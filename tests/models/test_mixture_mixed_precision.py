"""WaveNet with the discretized logistic mixture head under mixed_float16 and XLA: training
stays finite and learns; log_prob under mixed_float16 matches float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ar.models import WaveNet

LENGTH = 32


def ramps(levels, n=64, seed=0):
    """x_t = (x_0 + t * stride) mod L: learnable from one step of context."""
    start = np.random.default_rng(seed).integers(0, levels, (n, 1))
    stride = levels // 64 + 1
    return ((start + stride * np.arange(LENGTH)[None, :]) % levels).astype("int32")


def make_model(levels=256):
    return WaveNet(num_classes=levels, dilations=[1, 2], residual_channels=16,
                   skip_channels=16, head="logistic_mixture", num_mixtures=3,
                   mu_law=levels <= 256)


@pytest.fixture
def policy():
    """Sets the global dtype policy for a test; float32 again afterwards, whatever happens."""
    try:
        yield keras.config.set_dtype_policy
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("name, jit", [("mixed_float16", False), ("mixed_float16", True),
                                       ("float32", True)])
@pytest.mark.slow
def test_mixture_trains_with_finite_falling_loss(policy, name, jit):
    policy(name)
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit)
    data = tf.data.Dataset.from_tensor_slices({"x": ramps(256)}).batch(16)
    losses = model.fit(data, epochs=4, verbose=0).history["loss"]
    assert np.isfinite(losses).all(), losses
    assert losses[-1] < 0.9 * losses[0], losses
    if name == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.output_params.compute_dtype == "float16"
    log_prob = model.log_prob({"x": ramps(256, n=4, seed=1)})
    assert log_prob.dtype == tf.float32 and np.isfinite(log_prob.numpy()).all()


@pytest.mark.parametrize("levels", [256, 65536])
def test_mixed_float16_log_prob_matches_float32(policy, levels):
    """Same weights, trained so the mixture is no longer the initial one: per position,
    log p differs by at most 0.01 nats and 0.2 % (float16 carries the head's parameters
    with ~5e-4 relative precision; the head computes in float32)."""
    keras.utils.set_random_seed(0)
    reference = make_model(levels)
    reference.compile(optimizer=keras.optimizers.Adam(1e-2))
    reference.fit(tf.data.Dataset.from_tensor_slices({"x": ramps(levels)}).batch(16),
                  epochs=10, verbose=0)
    x = {"x": ramps(levels)[:8]}  # training rows: where the mixture has sharpened
    expected = reference.log_prob(x).numpy()
    policy("mixed_float16")
    half = make_model(levels)
    half.log_prob(x)  # builds the weights
    half.set_weights(reference.get_weights())
    assert half.output_params.compute_dtype == "float16"
    got = half.log_prob(x).numpy()
    assert got.dtype == np.float32
    assert expected.mean() > -LENGTH * np.log(levels) + 1.0  # it learned something
    np.testing.assert_allclose(got / LENGTH, expected / LENGTH, atol=0.01)
    np.testing.assert_allclose(got, expected, rtol=2e-3)
    assert not np.array_equal(got, expected)  # the float16 path really ran
