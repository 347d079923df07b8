import numpy as np
import pytest

from keras_ar import testing
from keras_ar.models import ByteNet

B, SV, TV, S = 2, 7, 9, 5  # batch, source vocab, target vocab, max source length


def make(**overrides):
    kwargs = dict(source_vocab_size=SV, target_vocab_size=TV, max_source_length=S, a=1.5,
                  b=2, encoder_dilations=[1, 2, 4], decoder_dilations=[1, 2, 4], channels=6,
                  kernel_size=3)
    kwargs.update(overrides)
    return ByteNet(**kwargs)


def make_source(lengths=(5, 3), seed=0):
    rng = np.random.default_rng(seed + 50)
    source = np.full((len(lengths), S), SV, "int32")  # pad id = source_vocab_size
    for row, n in enumerate(lengths):
        source[row, :n] = rng.integers(0, SV, n)
    return source


def make_inputs(model, length=None, seed=0):
    rng = np.random.default_rng(seed)
    length = model.max_length if length is None else length
    return {"x": rng.integers(0, TV, (B, length)).astype("int32"),
            "local_condition": make_source(seed=seed)}


def test_max_length_is_the_unfolded_source():
    assert make().max_length == 9  # floor(1.5 * 5) + 2
    assert make(a=1.2, b=0, max_source_length=10).max_length == 12


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_step_and_prefill_reproduce_teacher_forcing(kernel_size):
    model = make(kernel_size=kernel_size)
    testing.assert_step_consistency(model, make_inputs(model), atol=1e-5, split=4)


def test_causal_in_the_target():
    model = make()

    def perturb(x, t):
        x[:, t + 1:] = (x[:, t + 1:] + 4) % TV
        return x

    testing.assert_causal(model, make_inputs(model), perturb, positions=[0, 3, 6])


def _change_last_source_token(model):
    inputs = make_inputs(model)
    base = model(inputs).numpy()
    changed = dict(inputs, local_condition=inputs["local_condition"].copy())
    changed["local_condition"][0, 4] = (changed["local_condition"][0, 4] + 1) % SV
    out = model(changed).numpy()
    np.testing.assert_allclose(out[1], base[1], atol=1e-6)  # row 1's source is unchanged
    return np.abs(out[0, 0] - base[0, 0]).max()


def test_encoder_sees_the_whole_source():
    """With a receptive field of 1 + 2 (1 + 2 + 4) = 15 >= 2 S positions, changing the last
    source token changes the params of the first target position; with dilations [1] (3
    positions) it cannot reach it."""
    assert _change_last_source_token(make()) > 1e-6
    assert _change_last_source_token(make(encoder_dilations=[1])) == 0


def test_encoder_is_zero_past_the_unfolded_length_and_ignores_padding_width():
    model = make()
    source = make_source()
    encoded = model.encode(model._validate_conditions({"local_condition": source})[
        "local_condition"]).numpy()
    unfolded = [int(np.floor(1.5 * n + 1e-4)) + 2 for n in (5, 3)]  # 9, 6
    assert np.abs(encoded[1, unfolded[1]:]).max() == 0
    assert np.abs(encoded[1, :unfolded[1]]).max() > 0
    # The same sources in a model with a longer max_source_length: same encoding up to U.
    wide = make(max_source_length=7)
    wide.set_weights(model.get_weights())
    padded = np.concatenate([source, np.full((B, 2), SV, "int32")], axis=1)
    wide_encoded = wide.encode(wide._validate_conditions({"local_condition": padded})[
        "local_condition"]).numpy()
    for row, u in enumerate(unfolded):
        np.testing.assert_allclose(wide_encoded[row, :u], encoded[row, :u], atol=1e-6)


def test_shorter_source_is_padded():
    model = make()
    inputs = make_inputs(model)
    short = dict(inputs, local_condition=inputs["local_condition"][:, :4])
    short["local_condition"][0, 3] = SV  # row 0 now has 3 tokens... and a pad
    full = dict(inputs, local_condition=np.concatenate(
        [short["local_condition"], np.full((B, 1), SV, "int32")], axis=1))
    np.testing.assert_allclose(model(short).numpy(), model(full).numpy(), atol=1e-6)


def test_sample_chunk_equals_sample_steps_and_stops():
    model = make()
    conditions = {"local_condition": make_source()}
    testing.assert_chunk_matches_steps(model, conditions, steps=7, batch=B)
    testing.assert_chunk_matches_steps(model, conditions, steps=7, batch=B, stop_token=3,
                                       seed=5)


def test_generate_with_stop_token_and_log_prob_lengths():
    model = make()
    conditions = {"local_condition": make_source()}
    noise = np.random.default_rng(1).uniform(size=(B, model.max_length, 1)).astype("float32")
    out = model.generate_from_noise(noise, conditions=conditions, stop_token=3,
                                    temperature=1.5)
    x, lengths = out["x"].numpy(), out["lengths"].numpy()
    assert x.shape == (B, model.max_length)
    for row, n in enumerate(lengths):
        assert (x[row, :n] != 3).all() and (x[row, n:] == 3).all()
    # log_prob with lengths scores only the first lengths[i] positions.
    scored = model.log_prob({"x": x, "lengths": lengths, **conditions}).numpy()
    for row, n in enumerate(lengths):
        alone = model.log_prob({"x": x[row:row + 1, :max(n, 1)], "local_condition":
                                conditions["local_condition"][row:row + 1]}).numpy()[0]
        np.testing.assert_allclose(scored[row], alone if n else 0.0, rtol=1e-5, atol=1e-5)


def test_generate_matches_sample_steps_with_a_prompt():
    model = make()
    conditions = {"local_condition": make_source()}
    noise = np.random.default_rng(3).uniform(size=(B, 6, 1)).astype("float32")
    prompt = np.array([[1, 2], [4, 5]], "int32")
    out = model.generate_from_noise(noise, prompt=prompt, conditions=conditions)["x"].numpy()
    state = model.init_state(B, conditions)
    _, state = model.prefill(np.array([[TV, 1], [TV, 4]], "int32"), state, conditions)
    x_prev = prompt[:, -1]
    for t in range(6):
        x_prev, _, state = model.sample_step(x_prev, state, noise[:, t],
                                             conditions=model.step_conditions(conditions, state))
        np.testing.assert_array_equal(out[:, t], np.asarray(x_prev))


def test_exact_normalisation_binary():
    model = make(target_vocab_size=2, max_source_length=1, a=1.0, b=2)
    seqs = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], "int32")
    source = np.full((8, 1), 4, "int32")
    total = np.exp(model.log_prob({"x": seqs, "local_condition": source}).numpy()).sum()
    assert abs(total - 1.0) < 1e-5


def test_config_and_saving_round_trip(tmp_path):
    model = make(a=1.2)
    inputs = make_inputs(model)
    assert ByteNet.from_config(model.get_config()).get_config() == model.get_config()
    testing.assert_config_round_trip(model, inputs)
    testing.assert_saving_round_trip(model, inputs, tmp_path)


def test_condition_specs_and_step_conditions():
    model = make()
    assert list(model.condition_specs()) == ["local_condition"]
    assert model.condition_specs()["local_condition"].shape.as_list() == [None, S]
    assert model.condition_specs(per_step=True) == {}
    state = model.init_state(B, {"local_condition": make_source()})
    assert model.step_conditions({"local_condition": make_source()}, state) == {}
    with pytest.raises(ValueError, match="`step` takes no `local_condition`"):
        model.step(np.full(B, TV, "int32"), state, {"local_condition": make_source()})


@pytest.mark.parametrize("source, message", [
    (np.zeros((B, S + 1), "int32"), r"has 6 source positions; this model takes 1 to "
                                    r"max_source_length=5"),
    (np.full((B, S), SV, "int32"), r"row 0 is empty"),
    (np.array([[1, SV, 2, SV, SV], [1, 2, 3, 4, 5]], "int32"), r"row 0 has a token after"),
    (np.array([[1, 2, SV + 1, SV, SV], [1, 2, 3, 4, 5]], "int32"),
     r"ids in \[0, 8\); received values in \[1, 8\]"),
    (np.zeros((B, S), "float32"), r"integer"),
])
def test_bad_sources_raise(source, message):
    model = make()
    with pytest.raises(ValueError, match=message):
        model.init_state(B, {"local_condition": source})


def test_step_past_max_length_and_long_targets_raise():
    model = make()
    state = model.init_state(B, {"local_condition": make_source()})
    state["index"] = np.full(B, model.max_length, "int32")
    with pytest.raises(ValueError, match=r"index < max_length: `state\['index'\]` reaches 9"):
        model.step(np.full(B, TV, "int32"), state)
    with pytest.raises(ValueError, match="has 10 positions; this ByteNet's max_length is 9"):
        model({"x": np.zeros((B, 10), "int32"), "local_condition": make_source()})
    with pytest.raises(ValueError, match="needs 10 target positions"):
        model.generate(batch_size=B, num_steps=10, conditions={
            "local_condition": make_source()})
    with pytest.raises(ValueError, match="requires the source"):
        model.init_state(B)
    with pytest.raises(ValueError, match="a >= 1"):
        make(a=0.5)


def test_loss_reaches_the_encoder():
    """The training loss (-mean log_prob) has a gradient in the encoder's weights."""
    import tensorflow as tf

    model = make()
    inputs = make_inputs(model)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(inputs)
    grad = tape.gradient(loss, model.encoder_blocks[0].kernel)
    assert np.isfinite(float(loss))
    assert np.abs(tf.convert_to_tensor(grad).numpy()).max() > 0


def test_bad_source_raises_inside_a_graph():
    import tensorflow as tf

    model = make()
    init = tf.function(lambda source: model.init_state(B, {"local_condition": source}))
    init(make_source())  # traced with a valid source
    for source in (np.full((B, S), SV, "int32"),
                   np.array([[1, SV, 2, SV, SV], [1, 2, 3, 4, 5]], "int32")):
        with pytest.raises(tf.errors.InvalidArgumentError, match="local_condition"):
            init(source)


def test_dilated_residual_block_is_centred_masked_and_round_trips():
    from keras_ar.layers import DilatedResidualBlock

    layer = DilatedResidualBlock(4, kernel_size=3, dilation_rate=2)
    layer.build((None, None, 4))
    h = np.random.default_rng(0).normal(size=(1, 9, 4)).astype("float32")
    base = layer(h).numpy()
    later = h.copy()
    later[:, 6] += 1.0  # reaches outputs 4, 6, 8 only (taps t - 2, t, t + 2)
    changed = np.abs(layer(later).numpy() - base).max(axis=-1)[0] > 1e-6
    np.testing.assert_array_equal(np.flatnonzero(changed), [4, 6, 8])
    mask = (np.arange(9) < 5).astype("float32")[None, :, None]
    masked = layer(h * mask, mask).numpy()
    np.testing.assert_allclose(masked[:, :5], layer(h[:, :5]).numpy(), atol=1e-6)
    assert np.abs(masked[:, 5:]).max() == 0
    clone = DilatedResidualBlock.from_config(layer.get_config())
    clone.build((None, None, 4))
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(h).numpy(), base, atol=1e-6)
