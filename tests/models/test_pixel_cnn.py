import itertools

import numpy as np
import pytest

from keras_ar import metrics, testing
from keras_ar.models import PixelCNN
from tests.models import image_checks

B, H, W, K = 2, 4, 5, 4


def make(channels=1, **overrides):
    kwargs = dict(image_shape=(H, W, channels), num_levels=K, num_layers=2, filters=6,
                  first_kernel_size=5)
    kwargs.update(overrides)
    return PixelCNN(**kwargs)


def make_inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.integers(0, model.num_levels, (B,) + model.image_shape).astype("int32")}
    if model.num_global_classes:
        inputs["global_condition"] = np.array([0, 2], "int32")
    if model.global_condition_dim:
        inputs["global_condition"] = rng.normal(size=(B, model.global_condition_dim)).astype(
            "float32")
    return inputs


@pytest.mark.parametrize("config", [{}, {"num_global_classes": 3},
                                    {"global_condition_dim": 3, "first_kernel_size": 7},
                                    {"kernel_size": 5, "output_filters": 8}])
def test_step_and_prefill_reproduce_teacher_forcing(config):
    model = make(**config)
    testing.assert_step_consistency(model, make_inputs(model), atol=1e-5, split=7)


def test_rgb_step_is_exact_for_the_first_channel_and_prefill_matches_steps():
    model = make(channels=3, num_global_classes=3)
    inputs = make_inputs(model)
    full = np.asarray(model.params_to_sequence(model(inputs)))
    stepped, state = testing.step_through(model, inputs)
    np.testing.assert_allclose(stepped[..., :K], full[..., :K], atol=1e-5)
    x_prev = testing.shift_right(model, np.asarray(model.to_sequence(inputs["x"])))
    conditions = image_checks.conditions_of(inputs)
    prefilled, pstate = model.prefill(x_prev[:, :9], model.init_state(B, conditions),
                                      conditions)
    np.testing.assert_allclose(np.asarray(prefilled)[..., :K], full[:, :9, :K], atol=1e-5)
    rest, pstate = testing.step_through(model, inputs, state=pstate, start=9)
    np.testing.assert_allclose(rest[..., :K], full[:, 9:, :K], atol=1e-5)
    for key in state:
        np.testing.assert_allclose(np.asarray(pstate[key]), np.asarray(state[key]), atol=1e-5)


def test_rgb_sample_step_samples_channels_exactly():
    model = make(channels=3)
    noise = np.random.default_rng(1).uniform(size=(B, H * W, 3)).astype("float32")
    x = model.generate_from_noise(noise)["x"]
    image_checks.assert_samples_follow_teacher_forcing(model, np.asarray(x), noise)


@pytest.mark.parametrize("channels,kernel_size", [(1, 3), (3, 3), (1, 5)])
def test_causality_by_gradients(channels, kernel_size):
    model = make(channels=channels, filters=12, kernel_size=kernel_size)
    image_checks.assert_causal_by_gradients(model, make_inputs(model))


def test_exact_normalisation_binary_2x2():
    model = PixelCNN(image_shape=(2, 2, 1), num_levels=2, num_layers=1, filters=4,
                     first_kernel_size=3)
    images = np.array(list(itertools.product([0, 1], repeat=4)), "int32").reshape(16, 2, 2, 1)
    total = np.exp(model.log_prob({"x": images}).numpy()).sum()
    assert abs(total - 1.0) < 1e-5


def test_bits_per_dim():
    model = make()
    inputs = make_inputs(model)
    bpd = metrics.bits_per_dim(model.log_prob(inputs), model.image_shape).numpy()
    expected = -model.log_prob(inputs).numpy() / (H * W * np.log(2.0))
    np.testing.assert_allclose(bpd, expected, rtol=1e-6)


def test_generate_reproducible_and_decodes_to_images():
    model = make()
    a = model.generate(batch_size=2, num_steps=H * W, seed=3)["x"]
    b = model.generate(batch_size=2, num_steps=H * W, seed=3)["x"]
    c = model.generate(batch_size=2, num_steps=H * W, seed=4)["x"]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert (a.numpy() != c.numpy()).any()
    images = model.decode(a).numpy()
    assert images.shape == (2, H, W, 1) and images.min() >= 0 and images.max() < K


def test_partial_generation_decodes_with_zeros_after_the_generated_pixels():
    model = make()
    x = model.generate(batch_size=3, num_steps=W + 1, seed=5)["x"].numpy()  # (3, W + 1, 1)
    images = model.decode(x).numpy()
    assert images.shape == (3, H, W, 1)
    flat = images.reshape(3, H * W, 1)
    np.testing.assert_array_equal(flat[:, :W + 1], x)
    assert not flat[:, W + 1:].any()


def test_inpainting_with_known_rows():
    model = make(num_global_classes=3)
    known = make_inputs(model)["x"][:, :2].reshape(B, 2 * W, 1)  # the first two rows
    conditions = {"global_condition": np.array([1, 2], "int32")}
    noise = np.random.default_rng(2).uniform(size=(B, H * W - 2 * W, 1)).astype("float32")
    out = model.generate_from_noise(noise, prompt=known, conditions=conditions)["x"]
    full = np.concatenate([known, out.numpy()], axis=1)
    image_checks.assert_samples_follow_teacher_forcing(model, full, noise, 2 * W, conditions)


def test_config_and_saving_round_trip(tmp_path):
    model = make(channels=3, num_global_classes=3)
    inputs = make_inputs(model)
    testing.assert_config_round_trip(model, inputs)
    testing.assert_saving_round_trip(model, inputs, tmp_path)


def test_mirrored_strategy_training_smoke():
    x = np.random.default_rng(0).integers(0, K, (8, H, W, 1)).astype("int32")
    image_checks.train_smoke(make, x)


@pytest.mark.parametrize("bad, match", [
    ({"x": np.zeros((B, H, W, 3), "int32")}, "channels|axis 3"),
    ({"x": np.full((B, H, W, 1), K, "int32")}, r"\[0, 4\)"),
    ({"x": np.zeros((B, H, W + 1, 1), "int32")}, "axis 2"),
    ({"x": np.zeros((B, H, W, 1), "float32")}, "integer"),
    ({"x": np.zeros((B, H, W, 1), "int32"), "global_condition": np.zeros([B], "int32")},
     "takes no"),
])
def test_bad_input_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        make()(bad)


def test_bad_conditioning_raises():
    model = make(num_global_classes=3)
    x = np.zeros((B, H, W, 1), "int32")
    with pytest.raises(ValueError, match="requires"):
        model({"x": x})
    with pytest.raises(ValueError, match="rank 1"):
        model({"x": x, "global_condition": np.zeros((B, 2), "int32")})
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model({"x": x, "global_condition": np.array([0, 3], "int32")})
