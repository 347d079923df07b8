"""The Japanese Vowels quality benchmark's accounting (bench/continuous_bench.py), untrained."""

import numpy as np

from bench import continuous_bench as cb


def _split(seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([7, 12, 29, 1], "int32")
    x = rng.normal(size=(4, cb.MAX_LENGTH, 12)).astype("float32")
    x[np.arange(cb.MAX_LENGTH)[None, :] >= lengths[:, None]] = 0.0
    return {"x": x, "lengths": lengths, "global_condition": np.array([0, 3, 8, 5], "int32")}


def test_stop_model_nll_is_its_log_prob_per_valid_step():
    model = cb.build("mdn", input_noise=0.0, hidden_dim=8, num_layers=2)
    split = _split()
    got = cb.scores(model, split, np.zeros(12, "float32"))
    log_prob = model.log_prob(cb.as_inputs(split, fixed=False)).numpy()
    np.testing.assert_allclose(got["nll"], -log_prob.sum() / split["lengths"].sum(), rtol=1e-5)
    assert got["values"] < got["nll"]  # the stop terms cost something


def test_fixed_length_end_term_is_the_padding_frame_probability():
    model = cb.build("fixed_length", input_noise=0.0, hidden_dim=8, num_layers=2)
    head = model.head
    k, d = head.num_mixtures, head.feature_dim
    pad = np.full(d, -1.5, "float32")
    params = np.zeros((1, cb.MAX_LENGTH, head.num_params), "float32")
    params[..., 0] = 50.0  # component 0 holds all the weight
    params[..., k:k + d] = pad  # centred on the padding frame
    params[..., k + k * d:k + k * d + d] = -7.0  # scale e^-7 << PAD_BOX
    near = cb.end_log_prob(head, params, np.array([10]), pad)
    params[..., k:k + d] = pad + 1.0  # one unit away in every dimension
    far = cb.end_log_prob(head, params, np.array([10]), pad)
    np.testing.assert_allclose(near, 0.0, atol=1e-6)
    assert far[0] < -50  # only the negligible other components reach the box
    assert cb.end_log_prob(head, params, np.array([cb.MAX_LENGTH]), pad)[0] == 0.0
    split = _split()
    got = cb.scores(model, split, pad)
    assert got["with_end"] >= got["values"]


def test_ks_and_bootstrap():
    assert cb.ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    assert cb.ks_statistic([1, 1], [5, 5, 5]) == 1.0
    boot = cb.bootstrap_ks(np.arange(7, 30), 370, 370, draws=50)
    assert boot.shape == (50,) and 0 < np.median(boot) < 0.15
