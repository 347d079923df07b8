import itertools

import numpy as np
import pytest
import tensorflow as tf

from keras_ar import testing
from keras_ar.models import PixelCNNPlusPlus
from tests.models import image_checks

B, H, W, L = 2, 4, 4, 8


def make(channels=3, **overrides):
    kwargs = dict(image_shape=(H, W, channels), num_levels=L, num_mixtures=2, num_layers=1,
                  filters=6, num_scales=2, dropout=0.1)
    kwargs.update(overrides)
    return PixelCNNPlusPlus(**kwargs)


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
                                    {"channels": 1, "global_condition_dim": 2}])
def test_step_and_prefill_reproduce_teacher_forcing(config):
    model = make(**config)
    testing.assert_step_consistency(model, make_inputs(model), atol=1e-5, split=6)


@pytest.mark.parametrize("config", [{}, {"channels": 1, "num_scales": 3, "image_shape": (4, 8, 1)}])
def test_params_of_a_pixel_depend_on_no_channel_of_it(config):
    model = make(**config)
    dep = image_checks.assert_causal_by_gradients(model, make_inputs(model))
    for p in range(1, model.num_pixels if not config else 0):  # 4x4: every earlier pixel
        assert dep[p, 0, :p].any(axis=-1).all(), f"pixel {p} misses earlier pixels"


def test_exact_normalisation_binary_2x2():
    model = PixelCNNPlusPlus(image_shape=(2, 2, 1), num_levels=2, num_mixtures=2,
                             num_layers=1, filters=4, num_scales=2)
    images = np.array(list(itertools.product([0, 1], repeat=4)), "int32").reshape(16, 2, 2, 1)
    total = np.exp(model.log_prob({"x": images}).numpy()).sum()
    assert abs(total - 1.0) < 1e-5


def test_exact_normalisation_rgb_mixture_small_bit_depth():
    model = PixelCNNPlusPlus(image_shape=(1, 1, 3), num_levels=4, num_mixtures=3,
                             num_layers=1, filters=4, num_scales=1)
    pixels = np.array(list(itertools.product(range(4), repeat=3)), "int32")  # all 64 values
    total = np.exp(model.log_prob({"x": pixels.reshape(64, 1, 1, 3)}).numpy()).sum()
    assert abs(total - 1.0) < 1e-5


def test_sampling_follows_teacher_forcing_and_temperature_shrinks():
    model = make(num_global_classes=3)
    conditions = {"global_condition": np.array([2, 0], "int32")}
    noise = np.random.default_rng(1).uniform(size=(B, H * W, 4)).astype("float32")
    x = model.generate_from_noise(noise, conditions=conditions, temperature=0.8)["x"]
    image_checks.assert_samples_follow_teacher_forcing(model, np.asarray(x), noise,
                                                       conditions=conditions, temperature=0.8)


@pytest.mark.slow
def test_inpainting_and_generate_reproducible():
    model = make()
    known = make_inputs(model)["x"][:, :2].reshape(B, 2 * W, 3)
    noise = np.random.default_rng(2).uniform(size=(B, H * W - 2 * W, 4)).astype("float32")
    out = model.generate_from_noise(noise, prompt=known)["x"]
    full = np.concatenate([known, out.numpy()], axis=1)
    image_checks.assert_samples_follow_teacher_forcing(model, full, noise, 2 * W)
    a = model.generate(batch_size=2, num_steps=H * W, seed=7)["x"]
    b = model.generate(batch_size=2, num_steps=H * W, seed=7)["x"]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert model.decode(a).shape == (2, H, W, 3)


def test_config_and_saving_round_trip(tmp_path):
    model = make(num_global_classes=3)
    inputs = make_inputs(model)
    testing.assert_config_round_trip(model, inputs)
    testing.assert_saving_round_trip(model, inputs, tmp_path)


@pytest.mark.slow
def test_mirrored_strategy_training_smoke():
    x = np.random.default_rng(0).integers(0, L, (8, H, W, 3)).astype("int32")
    image_checks.train_smoke(make, x)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="divisible"):
        make(image_shape=(4, 6, 3), num_scales=3)
    model = make(num_global_classes=3)
    x = np.zeros((B, H, W, 3), "int32")
    with pytest.raises(ValueError, match="axis 3"):
        model({"x": x[..., :1], "global_condition": np.array([0, 1], "int32")})
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        model({"x": x + 8, "global_condition": np.array([0, 1], "int32")})
    with pytest.raises(ValueError, match="requires"):
        model({"x": x})


@pytest.mark.parametrize("config", [
    {"image_shape": (3, 5, 3), "num_scales": 1},  # odd H and W
    {"image_shape": (6, 2, 1), "num_scales": 2, "num_global_classes": 3}])  # odd 3 x 1 grid
def test_step_reproduces_teacher_forcing_at_odd_sizes(config):
    model = make(**config)
    testing.assert_step_consistency(model, make_inputs(model), atol=1e-5, split=5)


def _matmul_macs(graph):
    macs = 0
    for op in graph.get_operations():
        if op.type in ("MatMul", "BatchMatMulV2"):
            a = op.inputs[0].shape.as_list()
            adjoint = op.get_attr("adj_x" if op.type == "BatchMatMulV2" else "transpose_a")
            macs += int(np.prod(op.outputs[0].shape.as_list())) * (a[-2] if adjoint else a[-1])
    return macs


def _step_graph_cost(model):
    """(state element count, MatMul multiply-adds of a step outside its branch, MatMul
    multiply-adds of the branch that runs at a row start) of one traced `step`."""
    spec = model.state_spec(2)
    fn = tf.function(lambda x, s: model.step(x, s)).get_concrete_function(
        tf.TensorSpec([2, model.channels], tf.int32),
        {k: tf.TensorSpec(v.shape, v.dtype) for k, v in spec.items()})
    branches = [op for op in fn.graph.get_operations() if op.type in ("If", "StatelessIf")]
    assert len(branches) == 1
    row_pass = fn.graph._functions[branches[0].get_attr("then_branch").name].graph
    size = sum(int(np.prod(v.shape)) for v in spec.values())
    return size, _matmul_macs(fn.graph), _matmul_macs(row_pass)


@pytest.mark.slow
def test_step_cost_per_pixel_depends_on_neither_height_nor_width():
    """The cache is per row: state size and a step's work are the same for 4 and 16 rows.
    Per pixel, the u stream's row pass (at the first pixel of each row) costs the same at
    every width, and only the one-hot column reads of the other steps grow with W."""
    short, tall = make(image_shape=(4, 8, 1)), make(image_shape=(16, 8, 1))
    assert short.step_cost() == tall.step_cost()
    assert _step_graph_cost(short) == _step_graph_cost(tall)
    costs = {}
    for width in (8, 16, 32):
        model = make(image_shape=(4, width, 1), filters=16, num_layers=2, num_scales=3)
        costs[width] = _step_graph_cost(model)[1:]
        assert model.step_cost() == make(image_shape=(4, 8, 1), filters=16, num_layers=2,
                                         num_scales=3).step_cost()
    assert costs[16][1] == 2 * costs[8][1] and costs[32][1] == 4 * costs[8][1]
    per_pixel = {w: step + row / w for w, (step, row) in costs.items()}
    assert per_pixel[32] < 1.25 * per_pixel[8], per_pixel
