import itertools

import numpy as np
import pytest

from keras_ar import testing
from keras_ar.models import GatedPixelCNN, PixelCNN
from tests.models import image_checks

B, H, W, K = 2, 4, 5, 4

CONFIGS = {
    "plain": {},
    "class": {"num_global_classes": 3},
    "vector_and_local": {"global_condition_dim": 3, "local_condition_dim": 2},
    "kernel5": {"kernel_size": 5, "num_global_classes": 3},
    "first5": {"first_kernel_size": 5},
    "no_vertical_residual": {"vertical_residual": False, "first_kernel_size": 3},
    "cropped_vertical": {"masked_vertical": False, "kernel_size": 5, "gate_bias": 0.0},
}


def make(channels=1, **overrides):
    kwargs = dict(image_shape=(H, W, channels), num_levels=K, num_layers=3, filters=6)
    kwargs.update(overrides)
    return GatedPixelCNN(**kwargs)


def make_inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.integers(0, model.num_levels, (B,) + model.image_shape).astype("int32")}
    if model.num_global_classes:
        inputs["global_condition"] = np.array([0, 2], "int32")
    if model.global_condition_dim:
        inputs["global_condition"] = rng.normal(size=(B, model.global_condition_dim)).astype(
            "float32")
    if model.local_condition_dim:
        inputs["local_condition"] = rng.normal(
            size=(B, H, W, model.local_condition_dim)).astype("float32")
    return inputs


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_step_and_prefill_reproduce_teacher_forcing(name):
    model = make(**CONFIGS[name])
    testing.assert_step_consistency(model, make_inputs(model), atol=1e-5, split=7)


def test_rgb_conditioned_sampling_is_exact():
    model = make(channels=3, filters=6, **CONFIGS["vector_and_local"])
    inputs = make_inputs(model)
    conditions = image_checks.conditions_of(inputs)
    noise = np.random.default_rng(1).uniform(size=(B, H * W, 3)).astype("float32")
    x = model.generate_from_noise(noise, conditions=conditions, temperature=0.7)["x"]
    image_checks.assert_samples_follow_teacher_forcing(model, np.asarray(x), noise,
                                                       conditions=conditions, temperature=0.7)


@pytest.mark.parametrize("channels", [1, 3])
def test_causality_by_gradients(channels):
    model = make(channels=channels, filters=12, num_global_classes=3)
    image_checks.assert_causal_by_gradients(model, make_inputs(model))


def test_no_blind_spot_but_a_plain_masked_stack_has_one():
    gated = GatedPixelCNN(image_shape=(H, W, 1), num_levels=K, num_layers=5, filters=16)
    dep = image_checks.dependency(gated, make_inputs(gated))[:, 0, :, 0]
    for p in range(H * W):
        assert dep[p, :p].all(), f"gated: pixel {p} misses earlier pixels {np.where(~dep[p, :p])}"
    # The same depth of 3x3 masked convolutions: receptive field reaches every earlier pixel
    # on paper (5 layers x 1 column per layer), yet the upper-right pixels stay invisible.
    plain = PixelCNN(image_shape=(H, W, 1), num_levels=K, num_layers=5, filters=16,
                     first_kernel_size=3, kernel_size=3)
    dep = image_checks.dependency(plain, make_inputs(plain))[:, 0, :, 0]
    p = 2 * W + 1  # pixel (2, 1): (0, 4) is 3 columns right, 2 rows up
    assert not dep[p, 4], "expected the masked stack's blind spot at (0, 4)"
    assert not all(dep[q, :q].all() for q in range(H * W))


def test_exact_normalisation_binary_2x2():
    model = GatedPixelCNN(image_shape=(2, 2, 1), num_levels=2, num_layers=2, filters=4)
    images = np.array(list(itertools.product([0, 1], repeat=4)), "int32").reshape(16, 2, 2, 1)
    total = np.exp(model.log_prob({"x": images}).numpy()).sum()
    assert abs(total - 1.0) < 1e-5


def test_generate_reproducible_with_class_and_decodes():
    model = make(num_global_classes=3)
    conditions = {"global_condition": np.array([1, 2], "int32")}
    a = model.generate(batch_size=2, num_steps=H * W, seed=5, conditions=conditions)["x"]
    b = model.generate(batch_size=2, num_steps=H * W, seed=5, conditions=conditions)["x"]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert model.decode(a).shape == (2, H, W, 1)


def test_inpainting_with_known_rows():
    model = make(**CONFIGS["vector_and_local"])
    inputs = make_inputs(model)
    conditions = image_checks.conditions_of(inputs)
    known = inputs["x"][:, :2].reshape(B, 2 * W, 1)
    noise = np.random.default_rng(2).uniform(size=(B, H * W - 2 * W, 1)).astype("float32")
    out = model.generate_from_noise(noise, prompt=known, conditions=conditions)["x"]
    full = np.concatenate([known, out.numpy()], axis=1)
    image_checks.assert_samples_follow_teacher_forcing(model, full, noise, 2 * W, conditions)


def test_config_and_saving_round_trip(tmp_path):
    model = make(channels=3, **CONFIGS["vector_and_local"])
    inputs = make_inputs(model)
    testing.assert_config_round_trip(model, inputs)
    testing.assert_saving_round_trip(model, inputs, tmp_path)


def test_configs_from_before_the_new_options_load_as_the_old_architecture():
    """Configs saved before `vertical_residual` / `first_kernel_size` / `masked_vertical`
    existed describe the first architecture: no vertical residual, every layer of
    `kernel_size`, vertical kernels of their live rows only."""
    config = make(kernel_size=5).get_config()
    assert config["vertical_residual"] and config["first_kernel_size"] == 7
    assert config["masked_vertical"] and config["gate_bias"] == 1.0
    for key in ("vertical_residual", "first_kernel_size", "masked_vertical", "gate_bias"):
        del config[key]
    old = GatedPixelCNN.from_config(config)
    assert not old.vertical_residual and old.first_kernel_size == 5
    assert not old.masked_vertical and old.gate_bias == 0.0
    assert old.v_convs[0].kernel.shape[:2] == (3, 5)


def test_gate_bias_opens_the_sigmoid_half_of_every_gate():
    f = 6
    for gate_bias in (1.0, 0.0):
        model = make(filters=f, gate_bias=gate_bias)
        for conv in model.v_convs + model.h_convs:
            bias = conv.bias.numpy()
            np.testing.assert_array_equal(bias[:f], 0.0)  # the tanh half
            np.testing.assert_array_equal(bias[f:], gate_bias)  # the sigmoid half


def test_masked_vertical_rows_are_held_counted_and_inert():
    """The vertical n x n kernels hold n // 2 masked rows below the centre: counted by
    `count_params`, absent from every output, with zero gradient; with the live rows copied
    into a model of cropped kernels, both models give the same params."""
    import tensorflow as tf

    masked = make(kernel_size=5, first_kernel_size=3, num_global_classes=3)
    cropped = make(kernel_size=5, first_kernel_size=3, num_global_classes=3,
                   masked_vertical=False)
    assert [tuple(c.kernel.shape[:2]) for c in masked.v_convs] == [(3, 3), (5, 5), (5, 5)]
    dead = sum(int(np.prod(c.kernel.shape)) // c.kernel.shape[0] * (c.kernel.shape[0] // 2)
               for c in masked.v_convs)
    assert masked.count_params() - cropped.count_params() == dead
    for source, target in zip(masked.weights, cropped.weights):
        value = source.numpy()
        target.assign(value[:target.shape[0]] if value.shape != target.shape else value)
    inputs = make_inputs(masked)
    np.testing.assert_allclose(np.asarray(masked(inputs)), np.asarray(cropped(inputs)),
                               atol=1e-6)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_sum(masked.log_prob(inputs))
    grads = tape.gradient(loss, [c.kernel for c in masked.v_convs])
    for conv, grad in zip(masked.v_convs, grads):
        live = conv.kernel_size[0]
        assert np.all(np.asarray(grad)[live:] == 0.0)
        assert np.any(np.asarray(grad)[:live] != 0.0)


@pytest.mark.slow
def test_mirrored_strategy_training_smoke():
    rng = np.random.default_rng(0)
    x = rng.integers(0, K, (8, H, W, 1)).astype("int32")
    image_checks.train_smoke(lambda: make(num_global_classes=3), x,
                             {"global_condition": rng.integers(0, 3, (8,)).astype("int32")})


def test_bad_conditioning_raises():
    model = make(**CONFIGS["vector_and_local"])
    inputs = make_inputs(model)
    with pytest.raises(ValueError, match="requires"):
        model({"x": inputs["x"], "global_condition": inputs["global_condition"]})
    with pytest.raises(ValueError, match="axis 2"):
        model(dict(inputs, local_condition=np.zeros((B, H, W + 1, 2), "float32")))
    with pytest.raises(ValueError, match="axis 1"):
        model(dict(inputs, global_condition=np.zeros((B, 5), "float32")))
    with pytest.raises(ValueError, match="float32"):
        model(dict(inputs, global_condition=np.zeros((B, 3), "int32")))
    with pytest.raises(ValueError, match="channels|axis 3"):
        model(dict(inputs, x=np.zeros((B, H, W, 3), "int32")))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        model(dict(inputs, x=np.full((B, H, W, 1), -1, "int32")))


def test_pixel_cnn_and_pixel_cnn_plus_plus_refuse_local_conditioning():
    import pytest

    from keras_ar.models import PixelCNN, PixelCNNPlusPlus

    for cls in (PixelCNN, PixelCNNPlusPlus):
        with pytest.raises(ValueError, match="local conditioning.*GatedPixelCNN"):
            cls(image_shape=(4, 4, 1), local_condition_dim=3)
        assert cls(image_shape=(4, 4, 1), local_condition_dim=0).local_condition_dim == 0
