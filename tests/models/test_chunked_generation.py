"""WaveNet's multi-step body (`_multi_step`, keras_ar/models/wavenet_chunks.py) in the
generation loop gives the plain body's params, state and samples."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ar import contract
from keras_ar.models import WaveNet
from tests.models.test_wavenet import CONFIGS, K, make, make_inputs

B = 2
# the test dilations [1, 2, 4, 1, 2] interleave small and large blocks for chunks of 2 and 4
CHUNKED = dict(CONFIGS, conditioned={"num_global_classes": 3, "local_condition_dim": 2,
                                     "local_hop": 3})
NAMES = ["plain", "conditioned", "global_vector", "kernel3", "mixture_head"]


def twins(config, chunk):
    """(chunked model, the same weights with the plain loop)."""
    chunked = make(config, generation_chunk=chunk)
    plain = WaveNet.from_config({**chunked.get_config(), "generation_chunk": 0})
    plain.set_weights(chunked.get_weights())
    return chunked, plain


def conditions_of(model, length):
    return {k: v for k, v in make_inputs(model, length=length).items() if k != "x"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("chunk", [2, 4])
def test_chunk_steps_reproduce_step_params_and_state(name, chunk):
    """Two chunks by hand (one full, one cut short) == `_step` one position at a time."""
    model, _ = twins(CHUNKED[name], chunk)
    body = model._multi_step()
    assert body.length == chunk and model._chunked_blocks()
    length = 2 * chunk
    inputs = make_inputs(model, seed=3, length=length)
    conditions = model._validate_conditions(
        {k: v for k, v in inputs.items() if k != "x"})
    x = np.concatenate([np.full((B, 1), model.start_id, "int32"), inputs["x"]], axis=1)
    state = chunked_state = model.init_state(B, conditions)
    for count in (chunk, chunk - 1):  # a full chunk, then one that stops early
        carried, invariant = body.begin(chunked_state)
        carried[contract.INDEX_KEY] = chunked_state[contract.INDEX_KEY]
        for j in range(count):
            t = int(state[contract.INDEX_KEY][0])
            step_conditions = model.step_conditions(conditions, state)
            expected, state = model.step(x[:, t], state, step_conditions)
            index = carried[contract.INDEX_KEY]
            params, carried = body.step(x[:, t], carried, invariant, j,
                                                step_conditions)
            carried[contract.INDEX_KEY] = index + 1
            np.testing.assert_allclose(params, expected, atol=1e-5)
        chunked_state = dict(body.end(chunked_state, carried, invariant,
                                              tf.constant(count)))
        chunked_state[contract.INDEX_KEY] = carried[contract.INDEX_KEY]
        assert sorted(chunked_state) == sorted(state)
        for key in state:
            np.testing.assert_allclose(chunked_state[key], state[key], atol=1e-5,
                                       err_msg=key)


@pytest.mark.parametrize("name", NAMES)
def test_chunked_generate_equals_plain_loop(name):
    chunked, plain = twins(CHUNKED[name], 2)
    steps = 11  # not a multiple of the chunk
    noise = np.random.default_rng(5).uniform(
        size=(B, steps, chunked.noise_spec[0])).astype("float32")
    conditions = conditions_of(chunked, steps)
    a = chunked.generate_from_noise(noise, conditions=conditions, temperature=0.9)
    b = plain.generate_from_noise(noise, conditions=conditions, temperature=0.9)
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["lengths"], b["lengths"])


def test_chunked_generate_with_prompts_and_stop_token():
    chunked, plain = twins({}, 4)
    noise = np.random.default_rng(6).uniform(size=(B, 13, 1)).astype("float32")
    prompt = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], "int32")
    for kwargs in ({"prompt": prompt},
                   {"prompt": prompt, "prompt_length": np.array([2, 5], "int32")},
                   {"stop_token": 3}, {"top_k": 4}, {"top_p": 0.7}):
        a = chunked.generate_from_noise(noise, **kwargs)
        b = plain.generate_from_noise(noise, **kwargs)
        np.testing.assert_array_equal(a["x"], b["x"], err_msg=str(kwargs))
        np.testing.assert_array_equal(a["lengths"], b["lengths"], err_msg=str(kwargs))


def test_seeded_generate_uses_the_chunked_loop_and_matches():
    chunked, plain = twins({}, 2)
    a = chunked.generate(batch_size=3, num_steps=9, seed=7)["x"].numpy()
    b = plain.generate(batch_size=3, num_steps=9, seed=7)["x"].numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 9) and a.min() >= 0 and a.max() < K


def test_generation_chunk_config_and_errors():
    model = WaveNet(num_classes=K, dilations=[1, 2, 32, 64], residual_channels=4,
                    skip_channels=4)
    assert model.generation_chunk == 32 and model._chunked_blocks() == [2, 3]
    assert WaveNet.from_config(model.get_config()).generation_chunk == 32
    small = WaveNet(num_classes=K, dilations=[1, 2, 4], residual_channels=4, skip_channels=4)
    assert small._multi_step() is None  # nothing to chunk: the plain loop
    context = make(CONFIGS["all"], generation_chunk=2)  # context stack: the plain loop
    assert context._multi_step() is None
    with pytest.raises(ValueError, match="generation_chunk"):
        WaveNet(generation_chunk=-1)
    with pytest.raises(ValueError, match="dilation_rate >= chunk"):
        model.blocks[0].conv.past_taps(tf.zeros([1, 1, 4]), 4)


def test_chunked_generate_under_xla_matches():
    chunked, _ = twins({}, 2)
    plain = chunked.generate(batch_size=2, num_steps=7, seed=3)["x"].numpy()
    xla = chunked.generate(batch_size=2, num_steps=7, seed=3, jit_compile=True)["x"].numpy()
    np.testing.assert_array_equal(xla, plain)
