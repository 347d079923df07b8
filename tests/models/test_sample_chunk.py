"""`sample_chunk` (the one generation loop) == K `sample_step` calls, for every family.

Each check compares the in-graph loop with a host loop of `sample_step` (`keras_ar.testing.
steps_like_chunk`): identical samples, lengths and stop flags, every state entry within 1e-5.
Chunks cross a forced prompt's end, stop tokens, sampled stop flags, image row boundaries and
local-condition frame boundaries; `generate` equals a sequence of chunks. The images are 4 x 4:
a chunk of 7 crosses a row boundary and the longest chunk (capped at the image's 16 pixels)
generates a whole image.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_ar import contract, testing
from keras_ar.models import (
    CausalTransformer,
    ContinuousSequenceModel,
    GatedPixelCNN,
    PixelCNN,
    PixelCNNPlusPlus,
    WaveNet,
)

B = 2


def _wavenet(**kw):
    return WaveNet(num_classes=12, dilations=[1, 2, 4, 1, 8], residual_channels=6,
                   skip_channels=6, **kw)


def _transformer(**kw):
    return CausalTransformer(vocab_size=9, num_layers=2, num_heads=2, hidden_dim=8,
                             max_length=72, intermediate_dim=16, **kw)


def _continuous(**kw):
    return ContinuousSequenceModel(feature_dim=2, num_mixtures=2, num_layers=2, hidden_dim=6,
                                   max_length=72, **kw)


FAMILIES = {
    "wavenet": lambda: _wavenet(generation_chunk=0),
    "wavenet_multi_step": lambda: _wavenet(generation_chunk=4),
    "wavenet_conditioned": lambda: _wavenet(num_global_classes=3, local_condition_dim=2,
                                            local_hop=3, generation_chunk=2),
    "wavenet_context": lambda: _wavenet(context_hop=2, context_dilations=[1, 2]),
    "transformer": lambda: _transformer(),
    "transformer_memory": lambda: _transformer(num_global_classes=2, memory_dim=3,
                                               memory_length=4),
    "pixel_cnn": lambda: PixelCNN(image_shape=(4, 4, 1), num_levels=4, num_layers=1,
                                  filters=4, first_kernel_size=3),
    "gated_pixel_cnn": lambda: GatedPixelCNN(image_shape=(4, 4, 1), num_levels=4,
                                             num_layers=2, filters=4, num_global_classes=3,
                                             local_condition_dim=2),
    "pixel_cnn_plus_plus": lambda: PixelCNNPlusPlus(image_shape=(4, 4, 3), num_levels=8,
                                                    num_mixtures=2, num_layers=1, filters=4,
                                                    num_scales=2, dropout=0.0),
    "continuous": lambda: _continuous(num_global_classes=2, local_condition_dim=2),
}


def conditions_for(model, length=64, seed=0):
    rng = np.random.default_rng(seed + 7)
    out = {}
    if getattr(model, "num_global_classes", 0):
        out[contract.GLOBAL_CONDITION] = (np.arange(B) % model.num_global_classes).astype(
            "int32")
    if getattr(model, "memory_dim", 0):
        out[contract.LOCAL_CONDITION] = rng.normal(
            size=(B, model.memory_length, model.memory_dim)).astype("float32")
    elif getattr(model, "local_condition_dim", 0):
        spec = model.condition_specs(False)[contract.LOCAL_CONDITION].shape.as_list()
        frames = -(-length // getattr(model, "local_hop", 1))
        shape = [B] + [frames if d is None else d for d in spec[1:]]
        out[contract.LOCAL_CONDITION] = rng.normal(size=shape).astype("float32")
    return out


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request):
    tf.keras.utils.set_random_seed(0)
    model = FAMILIES[request.param]()
    return request.param, model, conditions_for(model)


@pytest.mark.parametrize("steps", [1, 7, pytest.param(32, marks=pytest.mark.slow)])
def test_chunk_equals_sample_steps(family, steps):
    """32 steps: past WaveNet's receptive field (17) and across 11 local-condition frames;
    the 64-step chunks of the stop tests below cover the rest of a transformer's cache."""
    _, model, conditions = family
    steps = min(steps, getattr(model, "num_pixels", steps))  # an image holds 16 positions
    testing.assert_chunk_matches_steps(model, conditions, steps, seed=steps)


def test_chunks_continue_from_the_returned_state(family):
    """Two chunks in a row (the second starts mid-sequence: image rows, local frames and
    the KV cache continue) each equal their sample steps."""
    _, model, conditions = family
    _, state = testing.assert_chunk_matches_steps(model, conditions, 5, seed=1)
    testing.assert_chunk_matches_steps(model, conditions, 7, seed=2, state=state)


def test_chunk_crossing_a_prompt_end(family):
    _, model, conditions = family
    testing.assert_chunk_matches_steps(model, conditions, 7, seed=3, forced_count=[3, 0])


def test_chunk_crossing_a_stop_token():
    model = _transformer()
    stop = 4
    out, _ = testing.assert_chunk_matches_steps(model, {}, 64, seed=5, stop_token=stop)
    lengths = np.asarray(out[contract.LENGTHS])
    assert np.any(lengths < 64)  # a row stopped inside the chunk: the case is exercised
    x = np.asarray(out[contract.X])
    for row, length in enumerate(lengths):
        assert stop not in x[row, :length] and np.all(x[row, length:] == stop)


def test_chunk_crossing_a_sampled_stop():
    model = _continuous()
    out, _ = testing.assert_chunk_matches_steps(model, {}, 64, seed=6)
    assert np.any(np.asarray(out[contract.STOP]) == 1)  # a row ended inside the chunk
    assert np.all(np.asarray(out[contract.LENGTHS]) >= 1)


@pytest.mark.parametrize("name", ["wavenet_conditioned", "transformer_memory", "continuous"])
def test_generate_equals_a_sequence_of_chunks(name):
    tf.keras.utils.set_random_seed(0)
    model = FAMILIES[name]()
    conditions = conditions_for(model, 16)
    noise = np.random.default_rng(9).uniform(
        size=(B, 15) + tuple(model.noise_spec)).astype("float32")
    whole = model.generate_from_noise(noise, conditions=conditions or None)
    state = model.init_state(B, conditions or None)
    x_prev = np.full((B,) + tuple(model.event_shape), model.start_id,
                     model.x_dtype.as_numpy_dtype)
    pieces = []
    for begin, end in ((0, 7), (7, 8), (8, 15)):
        chunk_conditions = (model.chunk_conditions(conditions, state, end - begin)
                            if conditions else None)
        out, state = model.sample_chunk(x_prev, state, noise[:, begin:end],
                                        conditions=chunk_conditions)
        pieces.append(np.asarray(out[contract.X]))
        x_prev = pieces[-1][:, -1]
    x = np.concatenate(pieces, axis=1)
    if model.samples_stop:  # rows end at their first sampled stop: compare up to it
        lengths = np.asarray(whole[contract.LENGTHS])
        for row, length in enumerate(lengths):
            np.testing.assert_array_equal(x[row, :length], np.asarray(whole["x"])[row, :length])
    else:
        np.testing.assert_array_equal(x, np.asarray(whole[contract.X]))


@pytest.mark.slow  # traces sample_chunk once per case
def test_chunk_errors_name_the_tensor():
    model = _wavenet(num_global_classes=3, local_condition_dim=2, local_hop=3)
    conditions = conditions_for(model, 16)
    state = model.init_state(B, conditions)
    x_prev = np.full([B], model.start_id, "int32")
    chunk = model.chunk_conditions(conditions, state, 4)
    noise = np.zeros((B, 4, 1), "float32")
    with pytest.raises(ValueError, match="K = 0"):
        model.sample_chunk(x_prev, state, noise[:, :0], conditions=chunk)
    with pytest.raises(ValueError, match="`noise`"):
        model.sample_chunk(x_prev, state, noise[:, :, 0], conditions=chunk)
    with pytest.raises(ValueError, match="local_condition.*covers 4 positions.*K = 3"):
        model.sample_chunk(x_prev, state, noise[:, :3], conditions=chunk)
    with pytest.raises(ValueError, match="x_prev.*batch 1"):
        model.sample_chunk(x_prev[:1], state, noise, conditions=chunk)
    with pytest.raises(ValueError, match="state_index.*batch"):
        model.sample_chunk(x_prev, {**state, "index": np.zeros([3], "int32")}, noise,
                           conditions=chunk)
    with pytest.raises(ValueError, match="prompt"):
        model.sample_chunk(x_prev, state, noise, conditions=chunk,
                           prompt=np.zeros((B, 5), "int32"), prompt_length=[1, 1])
    with pytest.raises(ValueError, match="together"):
        model.sample_chunk(x_prev, state, noise, conditions=chunk, prompt_length=[1, 1])
