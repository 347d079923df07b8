import math

import numpy as np
import pytest

from keras_ar.heads import MixtureDensityHead

K = 3


def random_params(head, batch, seed, log_scale_range=(-2.0, 0.5)):
    rng = np.random.default_rng(seed)
    k, d = head.num_mixtures, head.feature_dim
    logits = rng.normal(size=(batch, k))
    means = rng.normal(0.0, 2.0, (batch, k * d))
    log_scales = rng.uniform(*log_scale_range, (batch, k * d))
    stop = rng.normal(0.0, 2.0, (batch, 1))
    return np.concatenate([logits, means, log_scales, stop], -1).astype("float32")


def np_value_log_prob(head, params, x):
    """Independent numpy reference: log sum_k pi_k prod_j f((x_j - mu_kj) / s_kj) / s_kj."""
    k, d = head.num_mixtures, head.feature_dim
    params = params.astype(np.float64)
    logits = params[..., :k]
    means = params[..., k:k + k * d].reshape(params.shape[:-1] + (k, d))
    log_scales = np.clip(params[..., k + k * d:k + 2 * k * d].reshape(means.shape), -7, 7)
    z = (x[..., None, :] - means) / np.exp(log_scales)
    if head.component == "gaussian":
        log_f = -0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)
    else:
        log_f = -z - 2 * np.log1p(np.exp(-z))
    log_w = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    per_component = np.sum(log_f - log_scales, -1) + log_w
    top = per_component.max(-1, keepdims=True)
    return (top + np.log(np.sum(np.exp(per_component - top), -1, keepdims=True)))[..., 0]


@pytest.mark.parametrize("component", ["gaussian", "logistic"])
def test_density_integrates_to_one_in_1d(component):
    head = MixtureDensityHead(1, K, component)
    params = random_params(head, 4, seed=0)
    grid = np.linspace(-80.0, 80.0, 160_001).astype("float32")  # step 1e-3
    x = np.broadcast_to(grid[None, :, None], (4, grid.size, 1))
    p = np.broadcast_to(params[:, None, :], (4, grid.size, params.shape[-1]))
    density = np.exp(head.value_log_prob(p, x).numpy().astype(np.float64))
    total = np.trapz(density, grid, axis=-1)
    np.testing.assert_allclose(total, 1.0, atol=1e-3)


def test_density_integrates_to_one_in_2d():
    head = MixtureDensityHead(2, K, "gaussian")
    params = random_params(head, 1, seed=1, log_scale_range=(-1.0, 0.3))
    grid = np.linspace(-14.0, 14.0, 1401).astype("float32")
    xx, yy = np.meshgrid(grid, grid, indexing="ij")
    x = np.stack([xx.ravel(), yy.ravel()], -1)
    p = np.broadcast_to(params, (x.shape[0], params.shape[-1]))
    density = np.exp(head.value_log_prob(p, x).numpy().astype(np.float64)).reshape(xx.shape)
    total = np.trapz(np.trapz(density, grid, axis=1), grid)
    assert abs(total - 1.0) < 1e-3


@pytest.mark.parametrize("component", ["gaussian", "logistic"])
def test_log_prob_matches_numpy(component):
    head = MixtureDensityHead(3, K, component)
    params = random_params(head, 16, seed=2)
    x = np.random.default_rng(3).normal(0, 2, (16, 3)).astype("float32")
    np.testing.assert_allclose(head.value_log_prob(params, x).numpy(),
                               np_value_log_prob(head, params, x), rtol=1e-5, atol=1e-4)


def test_stop_is_a_proper_bernoulli():
    head = MixtureDensityHead(2, K)
    params = random_params(head, 7, seed=4)
    params[:, -1] = [-60.0, -5.0, -0.3, 0.0, 0.7, 5.0, 60.0]
    p_stop = np.exp(head.stop_log_prob(params, np.ones(7)).numpy().astype(np.float64))
    p_go = np.exp(head.stop_log_prob(params, np.zeros(7)).numpy().astype(np.float64))
    assert np.all((p_stop >= 0) & (p_stop <= 1) & (p_go >= 0) & (p_go <= 1))
    np.testing.assert_allclose(p_stop + p_go, 1.0, atol=1e-6)
    np.testing.assert_allclose(p_stop, 1 / (1 + np.exp(-params[:, -1].astype(np.float64))),
                               atol=1e-6)
    assert np.all(np.isfinite(head.stop_log_prob(params, np.ones(7)).numpy()))
    x = np.zeros((7, 2), "float32")
    np.testing.assert_allclose(
        head.log_prob(params, x, stop=np.ones(7)).numpy(),
        head.value_log_prob(params, x).numpy() + np.log(p_stop), rtol=1e-5)


def _ks_against_cdf(samples, grid, density):
    cdf = np.cumsum(density) * (grid[1] - grid[0])
    empirical = np.searchsorted(np.sort(samples), grid, side="right") / samples.size
    return np.abs(empirical - cdf).max()


@pytest.mark.parametrize("component", ["gaussian", "logistic"])
def test_samples_follow_the_density(component):
    head = MixtureDensityHead(1, K, component)
    n = 20_000
    params = np.repeat(random_params(head, 1, seed=5, log_scale_range=(-1.0, 0.0)), n, 0)
    noise = np.random.default_rng(6).uniform(size=(n, head.noise_size)).astype("float32")
    ones = np.ones(n, "float32")
    samples = head.sample(params, noise, ones, np.zeros(n, "int32"), ones).numpy()[:, 0]
    grid = np.linspace(-40, 40, 80_001).astype("float32")
    p = np.broadcast_to(params[:1], (grid.size, params.shape[-1]))
    density = np.exp(head.value_log_prob(p, grid[:, None]).numpy().astype(np.float64))
    assert _ks_against_cdf(samples, grid, density) < 0.015  # 1% critical value ~0.0115
    stops = head.sample_stop(params, noise, ones).numpy()
    p_stop = 1 / (1 + np.exp(-params[0, -1]))
    assert abs(stops.mean() - p_stop) < 4 * math.sqrt(p_stop * (1 - p_stop) / n)


def test_temperature_shrinks_scales_and_zero_is_the_mode():
    head = MixtureDensityHead(1, 1)
    n = 20_000
    params = np.tile(np.array([[0.0, 1.5, math.log(2.0), 0.4]], "float32"), (n, 1))
    noise = np.random.default_rng(7).uniform(size=(n, head.noise_size)).astype("float32")
    controls = (np.zeros(n, "int32"), np.ones(n, "float32"))
    for temperature in (1.0, 0.25):
        x = head.sample(params, noise, np.full(n, temperature, "float32"), *controls).numpy()
        assert abs(x.mean() - 1.5) < 0.05
        assert abs(x.std() - 2.0 * math.sqrt(temperature)) < 0.05
    greedy = head.sample(params, noise, np.zeros(n, "float32"), *controls).numpy()
    np.testing.assert_allclose(greedy, 1.5)
    stop = head.sample_stop(params, noise, np.zeros(n, "float32")).numpy()
    assert stop.all()  # sigmoid(0.4) > 1/2


def test_sharpened_weights_pick_the_heavier_component():
    head = MixtureDensityHead(1, 2)
    n = 10_000
    params = np.tile(np.array([[0.0, 1.0, -5.0, 5.0, -3.0, -3.0, 0.0]], "float32"), (n, 1))
    noise = np.random.default_rng(8).uniform(size=(n, head.noise_size)).astype("float32")
    controls = (np.zeros(n, "int32"), np.ones(n, "float32"))
    share = [float((head.sample(params, noise, np.full(n, t, "float32"),
                                *controls).numpy() > 0).mean()) for t in (1.0, 0.3)]
    assert abs(share[0] - 1 / (1 + math.exp(-1))) < 0.02
    assert share[1] > share[0] + 0.15


def test_layout_config_and_errors():
    head = MixtureDensityHead(3, 4, "gaussian")
    assert head.num_params == 4 * 7 + 1 and head.noise_size == 2 + 6
    assert MixtureDensityHead(3, 4, "logistic").noise_size == 2 + 3
    assert head.event_shape == (3,)
    clone = MixtureDensityHead.from_config(head.get_config())
    assert (clone.feature_dim, clone.num_mixtures, clone.component) == (3, 4, "gaussian")
    with pytest.raises(ValueError, match="component"):
        MixtureDensityHead(2, 3, "laplace")
    with pytest.raises(ValueError, match="feature_dim"):
        MixtureDensityHead(0, 3)
