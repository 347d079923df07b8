"""DiscretizedLogisticMixtureHead against an independent numpy computation of eq. (2) of
Salimans et al. 2017 (PixelCNN++), reference parameter layout, edges 0 and 255 included."""

import itertools
import math

import numpy as np
import tensorflow as tf

from keras_ar.heads import DiscretizedLogisticMixtureHead


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_log_prob(params, x, num_mixtures, num_levels=256):
    """One pixel: params [10 M] (M logits; per channel M means, M log-scales, M coeffs)."""
    m = num_mixtures
    logits = params[:m]
    per_channel = params[m:].reshape(3, 3 * m)
    means, log_scales = per_channel[:, :m], np.maximum(per_channel[:, m:2 * m], -7.0)
    coeffs = np.tanh(per_channel[:, 2 * m:])
    y = 2.0 * x / (num_levels - 1) - 1.0
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    total = 0.0
    for k in range(m):
        mu = [means[0, k], means[1, k] + coeffs[0, k] * y[0],
              means[2, k] + coeffs[1, k] * y[0] + coeffs[2, k] * y[1]]
        prob = 1.0
        for c in range(3):
            s = math.exp(log_scales[c, k])
            upper = 1.0 if x[c] == num_levels - 1 else _sigmoid(
                (y[c] + 1.0 / (num_levels - 1) - mu[c]) / s)
            lower = 0.0 if x[c] == 0 else _sigmoid((y[c] - 1.0 / (num_levels - 1) - mu[c]) / s)
            prob *= upper - lower
        total += weights[k] * prob
    return math.log(total)


def test_matches_numpy_reference_including_edges():
    m = 4
    head = DiscretizedLogisticMixtureHead(num_mixtures=m)
    rng = np.random.default_rng(0)
    params = rng.normal(size=(40, 10 * m))
    params[:, m:] *= 0.3  # means near [-1, 1], scales large enough for the exact branch
    x = rng.integers(0, 256, (40, 3))
    x[:4] = [[0, 0, 0], [255, 255, 255], [0, 128, 255], [255, 0, 17]]
    got = head.log_prob(tf.constant(params, tf.float32), tf.constant(x, tf.int32)).numpy()
    expected = [reference_log_prob(p, v, m) for p, v in zip(params, x)]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_log_scales_clamped_at_minus_seven():
    head = DiscretizedLogisticMixtureHead(num_mixtures=1)
    params = np.zeros((1, 10), np.float32)
    params[0, 1 + 1::3] = -20.0  # the log-scale of each channel
    a = head.log_prob(params, np.array([[127, 127, 127]]))
    params[0, 1 + 1::3] = -7.0
    b = head.log_prob(params, np.array([[127, 127, 127]]))
    np.testing.assert_allclose(a.numpy(), b.numpy())


def test_sums_to_one_over_all_values_of_a_small_bit_depth():
    for channels, levels in ((3, 8), (1, 16)):
        head = DiscretizedLogisticMixtureHead(num_mixtures=3, num_channels=channels,
                                              num_levels=levels)
        values = np.array(list(itertools.product(range(levels), repeat=channels)), "int32")
        params = np.random.default_rng(1).normal(size=(1, head.num_params)).astype("float32")
        params = tf.constant(np.repeat(params, len(values), 0))
        total = np.exp(head.log_prob(params, values).numpy()).sum()
        assert abs(total - 1.0) < 1e-5, (channels, levels, total)


def _total_mass(head, params):
    values = np.arange(head.num_levels, dtype="int32")[:, None]
    tiled = tf.constant(np.repeat(params[None], len(values), 0))
    return np.exp(head.log_prob(tiled, values).numpy().astype("float64")).sum()


def test_sums_to_one_at_every_alphabet_size():
    """Edges come from the bin width: no interior bin is scored as an edge bin at any L."""
    rng = np.random.default_rng(2)
    for levels in (2, 256, 4096, 65536):
        head = DiscretizedLogisticMixtureHead(num_mixtures=5, num_channels=1,
                                              num_levels=levels)
        for scale in (-7.0, -4.0, -1.0, 1.0):  # narrow (sub-bin at 4096+) to wide logistics
            params = rng.normal(size=head.num_params).astype("float32")
            params[10:15] = scale + rng.normal(size=5) * 0.1  # the log-scales
            total = _total_mass(head, params)
            assert abs(total - 1.0) < 1e-5, (levels, scale, total)


def test_large_alphabet_matches_float64_reference():
    levels = 65536
    head = DiscretizedLogisticMixtureHead(num_mixtures=2, num_channels=1, num_levels=levels)
    params = np.array([0.3, -0.2, 0.1, -0.5, -6.0, -3.0], "float32")  # logits, means, log s
    x = np.array([0, 1, 2, 31000, 32767, 39000, 65534, 65535], "int32")
    got = head.log_prob(tf.constant(np.repeat(params[None], len(x), 0)), x[:, None]).numpy()
    w = np.exp(params[:2].astype("float64"))
    w /= w.sum()
    expected = []
    for v in x:
        lo, hi = (2.0 * v - 1) / (levels - 1) - 1.0, (2.0 * v + 1) / (levels - 1) - 1.0
        mass = 0.0
        for k in range(2):
            mu, s = float(params[2 + k]), math.exp(float(params[4 + k]))
            hi_z = math.inf if v == levels - 1 else (hi - mu) / s
            lo_z = -math.inf if v == 0 else (lo - mu) / s
            if lo_z > 0:  # right of the mean: difference of the upper tails, no cancellation
                mass += w[k] * (_sigmoid(-lo_z) - _sigmoid(-hi_z))
            else:
                mass += w[k] * (_sigmoid(hi_z) - _sigmoid(lo_z))
        expected.append(math.log(mass))
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)
