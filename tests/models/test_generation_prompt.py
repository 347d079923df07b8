"""Per-row teacher-forced prompts in the generation loop (`prompt_length`), as exported.

`generate_from_noise(noise, prompt, prompt_length=L)`: positions t < L[i] of row i are the
prompt's, unchanged; the continuation equals `prefill(prompt)` followed by a `sample_step`
loop fed the noise from position L[i] on. One tiny model per layout: token ids (WaveNet),
raster-order pixels with channels (PixelCNN), real-valued frames (continuous model).
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_ar import contract
from keras_ar.models import CausalTransformer, ContinuousSequenceModel, PixelCNN, WaveNet

STEPS = 8
CONTROLS = dict(temperature=1.0, top_k=0, top_p=1.0)


def _wavenet():
    return WaveNet(num_classes=16, dilations=[1, 2], residual_channels=4, skip_channels=4)


def _pixel_cnn():
    return PixelCNN(image_shape=(3, 3, 3), num_levels=4, num_layers=1, filters=4,
                    first_kernel_size=3)


def _continuous():
    return ContinuousSequenceModel(feature_dim=2, num_mixtures=2, num_layers=1, hidden_dim=4,
                                   max_length=16)


MODELS = {"wavenet": _wavenet, "pixel_cnn": _pixel_cnn, "continuous": _continuous}


def _reference(model, noise, prompt, length):
    """prefill(start, prompt[:L-1]) then sample_step from x_prev = prompt[L-1], noise[L:]."""
    state = model.init_state(1)
    x_prev = np.full((1,) + tuple(model.event_shape), model.start_id,
                     model.x_dtype.as_numpy_dtype)
    if length:
        shifted = np.concatenate([x_prev[:, None], prompt[None, :length - 1]], axis=1)
        _, state = model.prefill(shifted, state)
        x_prev = prompt[None, length - 1]
    out = []
    for t in range(length, noise.shape[0]):
        x_prev, _, state = model.sample_step(x_prev, state, noise[None, t], **CONTROLS)
        out.append(np.asarray(x_prev)[0])
    return np.stack(out) if out else None


@pytest.mark.parametrize("family", sorted(MODELS))
def test_prompt_kept_and_continuation_equals_prefill_then_steps(family):
    tf.keras.utils.set_random_seed(0)
    model = MODELS[family]()
    rng = np.random.default_rng(0)
    noise = rng.uniform(size=(3, STEPS) + tuple(model.noise_spec)).astype("float32")
    prompt = np.asarray(model.generate_from_noise(
        rng.uniform(size=noise.shape).astype("float32"), **CONTROLS)[contract.X])
    lengths = np.array([3, 0, STEPS], "int32")
    out = model.generate_from_noise(noise, prompt=prompt, prompt_length=lengths, **CONTROLS)
    x, ends = np.asarray(out[contract.X]), np.asarray(out[contract.LENGTHS])
    assert x.shape == prompt.shape
    for row, length in enumerate(lengths):
        np.testing.assert_array_equal(x[row, :length], prompt[row, :length])
        want = _reference(model, noise[row], prompt[row], int(length))
        if want is not None:  # up to a sampled stop (the continuous model's), then padding
            np.testing.assert_allclose(x[row, length:ends[row]], want[:ends[row] - length],
                                       atol=1e-5)
    assert not np.array_equal(x[0, 3:], prompt[0, 3:])  # row 0 was sampled afresh


def test_no_prompt_equals_plain_generation_and_short_prompt_is_padded():
    model = _wavenet()
    noise = np.random.default_rng(1).uniform(size=(2, STEPS, 1)).astype("float32")
    plain = np.asarray(model.generate_from_noise(noise)[contract.X])
    empty = model.generate_from_noise(noise, prompt=np.zeros([2, 0], "int32"),
                                      prompt_length=[0, 0])[contract.X]
    np.testing.assert_array_equal(plain, empty)
    short = np.asarray(model.generate_from_noise(noise, prompt=[[5, 6], [7, 8]],
                                                 prompt_length=[9, 1])[contract.X])
    assert short.shape == (2, STEPS)  # lengths past P = 2 are clipped to it
    np.testing.assert_array_equal(short[0, :2], [5, 6])
    assert short[1, 0] == 7


def test_seeded_generate_with_prompt_length_and_stop_token_in_prompt():
    model = CausalTransformer(vocab_size=8, num_layers=1, num_heads=2, hidden_dim=8,
                              max_length=8)
    prompt = np.array([[3, 1, 2, 0, 0, 0, 0, 0]], "int32")
    out = model.generate(num_steps=8, seed=3, prompt=prompt, prompt_length=[3],
                         stop_token=1)
    x = np.asarray(out[contract.X])
    np.testing.assert_array_equal(x[0, :3], [3, 1, 2])  # the stop id inside the prompt stays
    sampled = list(x[0, 3:])
    expected = 3 + (sampled.index(1) if 1 in sampled else 5)
    assert int(out[contract.LENGTHS][0]) == expected


def test_bad_prompt_inputs_are_refused():
    model = _wavenet()
    noise = np.zeros([1, 4, 1], "float32")
    with pytest.raises(ValueError, match="prompt_length"):
        model.generate_from_noise(noise, prompt_length=[1])
    with pytest.raises(ValueError, match="at most num_steps=4"):
        model.generate_from_noise(noise, prompt=np.zeros([1, 5], "int32"), prompt_length=[1])
    with pytest.raises(ValueError, match="prompt_length"):
        model.generate_from_noise(noise, prompt=np.zeros([1, 2], "int32"),
                                  prompt_length=[1.5])
