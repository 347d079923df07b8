import numpy as np
import pytest

from keras_ar import testing
from keras_ar.models import EncoderDecoderTransformer

B, SV, TV, S, L = 2, 7, 9, 5, 10  # batch, source vocab, target vocab, source length, target

CONFIGS = {
    "plain": {},
    "sinusoidal_class": {"position": "sinusoidal", "num_global_classes": 3},
}


def make(config=None, **overrides):
    kwargs = dict(source_vocab_size=SV, target_vocab_size=TV, max_source_length=S,
                  encoder_layers=2, num_layers=2, num_heads=2, hidden_dim=8,
                  intermediate_dim=16, max_length=L)
    kwargs.update(config or {})
    kwargs.update(overrides)
    return EncoderDecoderTransformer(**kwargs)


def make_source(lengths=(5, 3), seed=0):
    rng = np.random.default_rng(seed + 50)
    source = np.full((len(lengths), S), SV, "int32")  # pad id = source_vocab_size
    for row, n in enumerate(lengths):
        source[row, :n] = rng.integers(0, SV, n)
    return source


def make_conditions(model, seed=0):
    conditions = {"local_condition": make_source(seed=seed)}
    if model.num_global_classes:
        conditions["global_condition"] = np.array([0, 2], "int32")
    return conditions


def make_inputs(model, length=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.integers(0, TV, (B, length)).astype("int32"),
            **make_conditions(model, seed)}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_step_and_prefill_reproduce_teacher_forcing(name):
    model = make(CONFIGS[name])
    testing.assert_step_consistency(model, make_inputs(model), atol=1e-5, split=3)


def test_causal_in_the_target():
    model = make()

    def perturb(x, t):
        x[:, t + 1:] = (x[:, t + 1:] + 4) % TV
        return x

    testing.assert_causal(model, make_inputs(model), perturb, positions=[0, 3, 6])


def test_encoder_sees_the_whole_source_and_ignores_pads():
    model = make()
    inputs = make_inputs(model)
    base = model(inputs).numpy()
    changed = dict(inputs, local_condition=inputs["local_condition"].copy())
    changed["local_condition"][0, 4] = (changed["local_condition"][0, 4] + 1) % SV
    out = model(changed).numpy()
    assert np.abs(out[0, 0] - base[0, 0]).max() > 1e-6  # the last token reaches position 0
    np.testing.assert_allclose(out[1], base[1], atol=1e-6)
    # A shorter source array is padded to max_source_length: the same params.
    short = dict(inputs, local_condition=np.array(
        [[1, 2, 3, SV], [4, 5, SV, SV]], "int32"))
    full = dict(inputs, local_condition=np.concatenate(
        [short["local_condition"], np.full((B, 1), SV, "int32")], axis=1))
    np.testing.assert_allclose(model(short).numpy(), model(full).numpy(), atol=1e-6)


def test_pads_do_not_change_the_tokens_encoding():
    """Keys are masked to the tokens: the memory rows of the tokens do not depend on the pad
    embedding (changing the pad row's weights changes only pad rows)."""
    model = make()
    source = make_source()
    memory = model.encode(source).numpy()
    weights = model.source_embedding.embeddings
    delta = np.zeros(weights.shape, "float32")
    delta[SV] = np.random.default_rng(0).normal(size=weights.shape[1])  # the pad id's row
    weights.assign(weights.numpy() + delta)
    moved = model.encode(source).numpy()
    np.testing.assert_allclose(moved[1, :3], memory[1, :3], atol=1e-6)
    assert np.abs(moved[1, 3:] - memory[1, 3:]).max() > 1e-4


def test_sample_chunk_equals_sample_steps_and_stops():
    model = make(CONFIGS["sinusoidal_class"])
    conditions = make_conditions(model)
    testing.assert_chunk_matches_steps(model, conditions, steps=6, batch=B)
    testing.assert_chunk_matches_steps(model, conditions, steps=6, batch=B, stop_token=2,
                                       seed=4)


def test_generate_with_stop_token_and_log_prob_lengths():
    model = make()
    conditions = make_conditions(model)
    noise = np.random.default_rng(1).uniform(size=(B, L, 1)).astype("float32")
    out = model.generate_from_noise(noise, conditions=conditions, stop_token=2,
                                    temperature=1.5)
    x, lengths = out["x"].numpy(), out["lengths"].numpy()
    for row, n in enumerate(lengths):
        assert (x[row, :n] != 2).all() and (x[row, n:] == 2).all()
    scored = model.log_prob({"x": x, "lengths": lengths, **conditions}).numpy()
    for row, n in enumerate(lengths):
        alone = model.log_prob({"x": x[row:row + 1, :max(n, 1)], "local_condition":
                                conditions["local_condition"][row:row + 1]}).numpy()[0]
        np.testing.assert_allclose(scored[row], alone if n else 0.0, rtol=1e-5, atol=1e-5)


def test_exact_normalisation_binary():
    model = make(target_vocab_size=2, max_length=3)
    seqs = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], "int32")
    source = np.tile(make_source()[:1], (8, 1))
    total = np.exp(model.log_prob({"x": seqs, "local_condition": source}).numpy()).sum()
    assert abs(total - 1.0) < 1e-5


def test_config_and_saving_round_trip(tmp_path):
    model = make(CONFIGS["sinusoidal_class"])
    inputs = make_inputs(model)
    config = model.get_config()
    assert "memory_dim" not in config and config["encoder_layers"] == 2
    testing.assert_config_round_trip(model, inputs)
    testing.assert_saving_round_trip(model, inputs, tmp_path)


def test_condition_specs():
    model = make(CONFIGS["sinusoidal_class"])
    whole, per_step = model.condition_specs(), model.condition_specs(per_step=True)
    assert whole["local_condition"].shape.as_list() == [None, S]
    assert whole["local_condition"].dtype.name == "int32"
    assert sorted(per_step) == ["global_condition"]
    state = model.init_state(B, make_conditions(model))
    assert state["cross_k_0"].shape == (B, 2, S, 4)
    with pytest.raises(ValueError, match="`step` takes no `local_condition`"):
        model.step(np.full(B, TV, "int32"), state, make_conditions(model))


@pytest.mark.parametrize("source, message", [
    (np.zeros((B, S + 1), "int32"), r"has 6 source positions"),
    (np.full((B, S), SV, "int32"), r"row 0 is empty"),
    (np.array([[1, SV, 2, SV, SV], [1, 2, 3, 4, 5]], "int32"), r"row 0 has a token after"),
    (np.array([[-1, 2, 3, SV, SV], [1, 2, 3, 4, 5]], "int32"), r"ids in \[0, 8\)"),
    (np.zeros((B, S, 3), "float32"), r"rank"),
])
def test_bad_sources_raise(source, message):
    model = make()
    with pytest.raises(ValueError, match=message):
        model.init_state(B, {"local_condition": source})


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="sets `memory_dim` itself"):
        make(memory_dim=4)
    with pytest.raises(ValueError, match="`encoder_layers` must be >= 1"):
        make(encoder_layers=0)


def test_loss_reaches_the_encoder():
    """The training loss (-mean log_prob) has a gradient in the encoder's weights."""
    import tensorflow as tf

    model = make()
    inputs = make_inputs(model)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(inputs)
    grad = tape.gradient(loss, model.source_embedding.embeddings)
    assert np.isfinite(float(loss))
    assert np.abs(tf.convert_to_tensor(grad).numpy()).max() > 0
