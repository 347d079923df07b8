import numpy as np
import pytest
import tensorflow as tf

from keras_ar.heads import CategoricalHead


def test_log_prob_matches_numpy_log_softmax():
    head = CategoricalHead(5)
    rng = np.random.default_rng(0)
    params = rng.normal(size=(3, 4, 5)).astype("float32")
    x = rng.integers(0, 5, (3, 4))
    expected = params - np.log(np.exp(params).sum(-1, keepdims=True))
    expected = np.take_along_axis(expected, x[..., None], -1)[..., 0]
    np.testing.assert_allclose(head.log_prob(params, x).numpy(), expected, atol=1e-6)


def test_channels_sum_over_channels():
    head = CategoricalHead(4, num_channels=3)
    assert head.num_params == 12 and head.event_shape == (3,) and head.noise_size == 3
    rng = np.random.default_rng(1)
    params = rng.normal(size=(2, 12)).astype("float32")
    x = rng.integers(0, 4, (2, 3))
    per_channel = [CategoricalHead(4).log_prob(params[:, 4 * c:4 * c + 4], x[:, c]).numpy()
                   for c in range(3)]
    np.testing.assert_allclose(head.log_prob(params, x).numpy(), sum(per_channel), atol=1e-6)
    sample = head.sample(params, rng.uniform(size=(2, 3)).astype("float32"), np.ones(2),
                         np.zeros(2, "int32"), np.ones(2))
    assert sample.shape == (2, 3)


def test_log_prob_is_float32_under_mixed_precision():
    head = CategoricalHead(3, dtype="mixed_float16")
    params = tf.constant([[60000.0, 0.0, -60000.0]], tf.float16)
    out = head.log_prob(params, tf.constant([1]))
    assert out.dtype == tf.float32 and np.isfinite(out.numpy()).all()


def test_config_round_trip():
    head = CategoricalHead(7, num_channels=3, name="h")
    clone = CategoricalHead.from_config(head.get_config())
    assert (clone.num_classes, clone.num_channels) == (7, 3)
    with pytest.raises(ValueError, match="num_classes"):
        CategoricalHead(1)


def test_mixture_head_accepts_numpy_params():
    from keras_ar.heads import DiscretizedLogisticMixtureHead

    head = DiscretizedLogisticMixtureHead(num_mixtures=2, num_channels=1, num_levels=4)
    params = np.zeros((3, head.num_params), "float32")
    total = sum(np.exp(head.log_prob(params, np.full([3], v, "int32")).numpy())
                for v in range(4))
    np.testing.assert_allclose(total, 1.0, atol=1e-5)
