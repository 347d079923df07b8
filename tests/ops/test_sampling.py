import numpy as np
import tensorflow as tf

from keras_ar.ops import apply_top_k, apply_top_p, inverse_cdf_sample, sample_categorical


def grid(n):
    return (np.arange(n, dtype="float32") + 0.5) / n


def test_inverse_cdf_frequencies_equal_probabilities_on_a_uniform_grid():
    probs = np.array([0.1, 0.0, 0.25, 0.65], "float32")
    n = 4000
    ids = inverse_cdf_sample(np.tile(probs, (n, 1)), grid(n)).numpy()
    freq = np.bincount(ids, minlength=4) / n
    np.testing.assert_allclose(freq, probs, atol=1.5 / n)


def test_sample_categorical_at_temperature_matches_softmax():
    logits = np.array([1.0, 2.0, 0.5], "float32")
    n = 3000
    ids = sample_categorical(np.tile(logits, (n, 1)), grid(n), np.full(n, 0.5),
                             np.zeros(n, "int32"), np.ones(n, "float32")).numpy()
    expected = tf.nn.softmax(logits / 0.5).numpy()
    np.testing.assert_allclose(np.bincount(ids, minlength=3) / n, expected, atol=2 / n)


def test_top_k_keeps_exactly_k_per_row():
    logits = np.array([[0.1, 3.0, 2.0, -1.0], [5.0, 4.0, 3.0, 2.0]], "float32")
    out = apply_top_k(logits, np.array([2, 0], "int32")).numpy()
    assert (out[0] > -1e8).tolist() == [False, True, True, False]
    assert (out[1] > -1e8).all()


def test_top_p_keeps_smallest_nucleus():
    probs = np.array([[0.5, 0.3, 0.15, 0.05]], "float32")
    kept = apply_top_p(probs, np.array([0.7], "float32")).numpy() > 0
    assert kept.tolist() == [[True, True, False, False]]
    kept = apply_top_p(probs, np.array([0.5], "float32")).numpy() > 0
    assert kept.tolist() == [[True, False, False, False]]
    kept = apply_top_p(probs * 3.0, np.array([1.0], "float32")).numpy() > 0  # unnormalised
    assert kept.all()


def test_top_k_sampling_never_leaves_the_top_k():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 10)).astype("float32")
    ids = sample_categorical(logits, rng.uniform(size=500).astype("float32"), np.ones(500),
                             np.full(500, 3, "int32"), np.ones(500, "float32")).numpy()
    top3 = np.argsort(-logits, axis=1)[:, :3]
    assert all(i in row for i, row in zip(ids, top3))


def test_greedy_is_argmax_and_ignores_noise():
    logits = np.array([[0.0, 1.0, 0.5], [2.0, 0.0, 1.0]], "float32")
    for u in (0.01, 0.99):
        ids = sample_categorical(logits, np.full(2, u, "float32"), np.zeros(2),
                                 np.zeros(2, "int32"), np.ones(2, "float32")).numpy()
        assert ids.tolist() == [1, 0]
