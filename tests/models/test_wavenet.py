import numpy as np
import pytest

from keras_ar import testing
from keras_ar.models import WaveNet

B, T, K = 2, 13, 16

CONFIGS = {
    "plain": {},
    "global_ids": {"num_global_classes": 3},
    "global_vector": {"global_condition_dim": 4},
    "local_transposed": {"local_condition_dim": 3, "local_hop": 4},
    "local_repeat": {"local_condition_dim": 3, "local_hop": 4, "local_upsample": "repeat"},
    "context": {"context_hop": 3, "context_dilations": [1, 2]},
    "all": {"num_global_classes": 3, "local_condition_dim": 2, "local_hop": 3,
            "context_hop": 4, "context_dilations": [1, 2]},
    "mixture_head": {"head": "logistic_mixture", "num_mixtures": 2},
    "kernel3": {"kernel_size": 3},
}


def make(config, **overrides):
    kwargs = dict(num_classes=K, dilations=[1, 2, 4, 1, 2], residual_channels=8,
                  skip_channels=8)
    kwargs.update(config)
    kwargs.update(overrides)
    return WaveNet(**kwargs)


def make_inputs(model, seed=0, length=T):
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.integers(0, K, (B, length)).astype("int32")}
    if model.num_global_classes:
        inputs["global_condition"] = np.array([0, 2], "int32")
    if model.global_condition_dim:
        inputs["global_condition"] = rng.normal(size=(B, model.global_condition_dim)).astype(
            "float32")
    if model.local_condition_dim:
        frames = -(-length // model.local_hop)
        inputs["local_condition"] = rng.normal(
            size=(B, frames, model.local_condition_dim)).astype("float32")
    return inputs


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_step_and_prefill_reproduce_teacher_forcing(name):
    model = make(CONFIGS[name])
    testing.assert_step_consistency(model, make_inputs(model), atol=1e-5, split=5)


@pytest.mark.parametrize("name", ["plain", "all", "kernel3"])
def test_causality(name):
    model = make(CONFIGS[name])

    def perturb(x, t):
        x[:, t + 1:] = (x[:, t + 1:] + 7) % K
        return x

    testing.assert_causal(model, make_inputs(model), perturb, positions=[0, 4, 9, 11])


def test_exact_normalisation_binary():
    model = WaveNet(num_classes=2, dilations=[1, 2], residual_channels=4, skip_channels=4)
    seqs = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], "int32")
    total = np.exp(model.log_prob({"x": seqs}).numpy()).sum()
    assert abs(total - 1.0) < 1e-5


def test_exact_normalisation_logistic_mixture_3bit():
    model = WaveNet(num_classes=8, dilations=[1], residual_channels=4, skip_channels=4,
                    head="logistic_mixture", num_mixtures=3)
    seqs = np.arange(8, dtype="int32")[:, None]
    total = np.exp(model.log_prob({"x": seqs}).numpy()).sum()
    assert abs(total - 1.0) < 1e-5


def test_receptive_field():
    model = WaveNet(dilations=[2 ** i for i in range(10)] * 2, kernel_size=2)
    assert model.receptive_field == 2047


def test_generate_is_reproducible_and_seed_dependent():
    model = make({})
    a = model.generate(batch_size=2, num_steps=12, seed=3)["x"].numpy()
    b = model.generate(batch_size=2, num_steps=12, seed=3)["x"].numpy()
    c = model.generate(batch_size=2, num_steps=12, seed=4)["x"].numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert a.shape == (2, 12) and a.min() >= 0 and a.max() < K


def test_generate_matches_python_loop_of_sample_step():
    model = make(CONFIGS["all"])
    inputs = make_inputs(model, length=9)
    conditions = {k: v for k, v in inputs.items() if k != "x"}
    noise = np.random.default_rng(1).uniform(size=(B, 9, 1)).astype("float32")
    out = model.generate_from_noise(noise, conditions=conditions, temperature=0.8)["x"]
    state = model.init_state(B, conditions)
    x_prev = np.full((B,), model.start_id, "int32")
    expected = []
    for t in range(9):
        x_prev, _, state = model.sample_step(
            x_prev, state, noise[:, t], 0.8, 0, 1.0, model.step_conditions(conditions, state))
        expected.append(np.asarray(x_prev))
    np.testing.assert_array_equal(out.numpy(), np.stack(expected, 1))


def test_prompt_continues_from_prefill():
    model = make({})
    prompt = np.array([[1, 2, 3], [4, 5, 6]], "int32")
    noise = np.random.default_rng(2).uniform(size=(B, 6, 1)).astype("float32")
    out = model.generate_from_noise(noise, prompt=prompt)["x"].numpy()
    state = model.init_state(B)
    _, state = model.prefill(np.array([[K, 1, 2], [K, 4, 5]], "int32"), state)
    x_prev = prompt[:, -1]
    for t in range(6):
        x_prev, _, state = model.sample_step(x_prev, state, noise[:, t])
        np.testing.assert_array_equal(out[:, t], np.asarray(x_prev))


def test_config_and_saving_round_trip(tmp_path):
    model = make(CONFIGS["all"])
    inputs = make_inputs(model)
    testing.assert_config_round_trip(model, inputs)
    testing.assert_saving_round_trip(model, inputs, tmp_path)
