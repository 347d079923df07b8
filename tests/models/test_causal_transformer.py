import numpy as np
import pytest
import tensorflow as tf

from keras_ar import testing
from keras_ar.layers import CachedMultiHeadAttention, TransformerBlock
from keras_ar.models import CausalTransformer

B, T, V, L = 2, 9, 11, 12

CONFIGS = {
    "plain": {},
    "global_ids": {"num_global_classes": 3},
    "global_vector": {"global_condition_dim": 4},
    "cross_attention": {"memory_dim": 5, "memory_length": 4},
    "sinusoidal": {"position": "sinusoidal"},
    "gelu_erf_dropout": {"activation": "gelu_erf", "dropout": 0.3},
    "all": {"num_global_classes": 3, "memory_dim": 5, "memory_length": 4,
            "position": "sinusoidal"},
}


def make(config=None, **overrides):
    kwargs = dict(vocab_size=V, num_layers=2, num_heads=2, hidden_dim=8, max_length=L,
                  intermediate_dim=16)
    kwargs.update(config or {})
    kwargs.update(overrides)
    return CausalTransformer(**kwargs)


def make_conditions(model, seed=0, batch=B):
    rng = np.random.default_rng(seed + 100)
    conditions = {}
    if model.num_global_classes:
        conditions["global_condition"] = (np.arange(batch) % model.num_global_classes).astype(
            "int32")
    if model.global_condition_dim:
        conditions["global_condition"] = rng.normal(
            size=(batch, model.global_condition_dim)).astype("float32")
    if model.memory_dim:
        conditions["local_condition"] = rng.normal(
            size=(batch, model.memory_length, model.memory_dim)).astype("float32")
    return conditions


def make_inputs(model, seed=0, length=T, batch=B):
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.integers(0, model.vocab_size, (batch, length)).astype("int32")}
    inputs.update(make_conditions(model, seed, batch))
    return inputs


# --------------------------------------------------------------------- step protocol
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_step_and_prefill_reproduce_teacher_forcing(name):
    model = make(CONFIGS[name])
    testing.assert_step_consistency(model, make_inputs(model), atol=1e-5, split=4)


def test_step_consistency_at_full_capacity():
    model = make(CONFIGS["all"])
    testing.assert_step_consistency(model, make_inputs(model, length=L), atol=1e-5, split=7)


def test_prefill_continues_at_each_rows_own_index():
    """Rows at different indices: prefill writes row b at index_b + arange(T)."""
    model = make(CONFIGS["global_ids"])
    inputs = make_inputs(model, length=8)
    full = model(inputs).numpy()
    conditions = {"global_condition": inputs["global_condition"]}
    x_prev = testing.shift_right(model, inputs["x"])
    state = model.init_state(B, conditions)
    _, state = model.step(x_prev[:, 0], state, conditions)  # both rows at index 1
    # Row 0 goes one step further, then both rows prefill 3 positions from their own index.
    p0, s0 = model.step(x_prev[:, 1], state, conditions)
    state = {k: tf.where(tf.reshape(tf.range(B) == 0, [B] + [1] * (v.shape.rank - 1)),
                         s0[k], v) for k, v in state.items()}
    rows = np.stack([x_prev[0, 2:5], x_prev[1, 1:4]])
    params, state = model.prefill(rows, state, conditions)
    np.testing.assert_allclose(params[0], full[0, 2:5], atol=1e-5)
    np.testing.assert_allclose(params[1], full[1, 1:4], atol=1e-5)
    np.testing.assert_array_equal(state["index"], [5, 4])


@pytest.mark.parametrize("name", ["plain", "all"])
def test_causality(name):
    model = make(CONFIGS[name])

    def perturb(x, t):
        x[:, t + 1:] = (x[:, t + 1:] + 5) % V
        return x

    testing.assert_causal(model, make_inputs(model), perturb, positions=[0, 3, 7])


def test_exact_normalisation_binary():
    model = make(vocab_size=2, max_length=3, num_global_classes=2)
    seqs = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], "int32")
    for g in (0, 1):
        total = np.exp(model.log_prob(
            {"x": seqs, "global_condition": np.full(8, g, "int32")}).numpy()).sum()
        assert abs(total - 1.0) < 1e-5


@pytest.mark.slow  # XLA compiles
def test_jit_compiled_step_matches_eager():
    model = make(CONFIGS["all"])
    inputs = make_inputs(model)
    conditions = model.step_conditions(make_conditions(model), None)
    state = model.init_state(B, make_conditions(model))
    jit_step = tf.function(model.step, jit_compile=True)
    x_prev = testing.shift_right(model, inputs["x"])
    jit_state = state
    for t in range(5):
        params, state = model.step(x_prev[:, t], state, conditions)
        jit_params, jit_state = jit_step(x_prev[:, t], jit_state, conditions)
        np.testing.assert_allclose(jit_params, params, atol=1e-5)
    for key in state:
        np.testing.assert_allclose(jit_state[key], state[key], atol=1e-5)


def test_step_needs_no_memory_input():
    model = make(CONFIGS["cross_attention"])
    conditions = make_conditions(model)
    state = model.init_state(B, conditions)
    assert model.step_condition_keys == ()
    assert set(model.condition_specs(per_step=True)) == set()
    assert set(model.condition_specs()) == {"local_condition"}
    assert state["cross_k_0"].shape == (B, 2, 4, 4)
    assert state["k_1"].shape == (B, 2, L, 4)
    params, new_state = model.step(np.full(B, model.start_id, "int32"), state)
    np.testing.assert_array_equal(new_state["cross_v_1"], state["cross_v_1"])
    assert params.shape == (B, V)


# --------------------------------------------------------------------- generation
def test_generate_is_reproducible_and_seed_dependent():
    model = make()
    a = model.generate(batch_size=2, num_steps=L, seed=3)["x"].numpy()
    b = model.generate(batch_size=2, num_steps=L, seed=3)["x"].numpy()
    c = model.generate(batch_size=2, num_steps=L, seed=4)["x"].numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert a.shape == (2, L) and a.min() >= 0 and a.max() < V


def test_generate_matches_python_loop_of_sample_step():
    model = make(CONFIGS["all"])
    conditions = make_conditions(model)
    noise = np.random.default_rng(1).uniform(size=(B, 10, 1)).astype("float32")
    out = model.generate_from_noise(noise, conditions=conditions, temperature=0.8,
                                    top_k=5)["x"]
    state = model.init_state(B, conditions)
    x_prev = np.full((B,), model.start_id, "int32")
    expected = []
    for t in range(10):
        x_prev, _, state = model.sample_step(
            x_prev, state, noise[:, t], 0.8, 5, 1.0, model.step_conditions(conditions, state))
        expected.append(np.asarray(x_prev))
    np.testing.assert_array_equal(out.numpy(), np.stack(expected, 1))


def test_prompt_continues_from_prefill():
    model = make(CONFIGS["global_ids"])
    conditions = make_conditions(model)
    prompt = np.array([[1, 2, 3], [4, 5, 6]], "int32")
    noise = np.random.default_rng(2).uniform(size=(B, 6, 1)).astype("float32")
    out = model.generate_from_noise(noise, prompt=prompt, conditions=conditions)["x"].numpy()
    state = model.init_state(B, conditions)
    _, state = model.prefill(np.array([[V, 1, 2], [V, 4, 5]], "int32"), state, conditions)
    x_prev = prompt[:, -1]
    for t in range(6):
        x_prev, _, state = model.sample_step(x_prev, state, noise[:, t],
                                             conditions=conditions)
        np.testing.assert_array_equal(out[:, t], np.asarray(x_prev))


def _uniform_model(vocab):
    """Output layer zeroed: every token has probability 1/vocab whatever the prefix, so the
    uniform noise u picks token floor(u * vocab) (inverse CDF)."""
    model = make(vocab_size=vocab)
    kernel, bias = model.output_params.get_weights()
    model.output_params.set_weights([np.zeros_like(kernel), np.zeros_like(bias)])
    return model


def test_stop_token_ends_each_row_and_reports_lengths():
    vocab, stop, steps = 5, 4, 8
    model = _uniform_model(vocab)
    tokens = np.array([[0, 1, 2, 4, 0, 1, 2, 3],    # stops at step 3
                       [1, 1, 1, 1, 1, 1, 1, 1],    # never stops
                       [4, 0, 0, 0, 0, 0, 0, 0]])   # stops at once
    noise = ((tokens + 0.5) / vocab).astype("float32")[:, :, None]
    out = model.generate_from_noise(noise, stop_token=stop)
    np.testing.assert_array_equal(out["lengths"], [3, steps, 0])
    expected = np.where(np.array([[t >= n for t in range(steps)] for n in (3, steps, 0)]),
                        stop, tokens)
    np.testing.assert_array_equal(out["x"], expected)
    none = model.generate_from_noise(noise)
    np.testing.assert_array_equal(none["x"], tokens)
    np.testing.assert_array_equal(none["lengths"], [steps] * 3)


def test_seeded_generate_with_stop_token_agrees_with_unstopped_run():
    model = make(vocab_size=4)
    stop, steps = 3, L
    raw = model.generate(batch_size=6, num_steps=steps, seed=7)["x"].numpy()
    out = model.generate(batch_size=6, num_steps=steps, seed=7, stop_token=stop)
    lengths = out["lengths"].numpy()
    x = out["x"].numpy()
    for row in range(6):
        hits = np.flatnonzero(raw[row] == stop)
        expected = hits[0] if hits.size else steps
        assert lengths[row] == expected
        np.testing.assert_array_equal(x[row, :expected], raw[row, :expected])
        assert (x[row, expected:] == stop).all()
    assert lengths.min() < steps, "no row stopped: the test is vacuous"


def test_certain_stop_token_after_prompt():
    """A hand-set output bias makes the stop token certain: every row stops at once."""
    model = make()
    kernel, bias = model.output_params.get_weights()
    bias[2] = 100.0
    model.output_params.set_weights([kernel, bias])
    out = model.generate(batch_size=2, num_steps=5, seed=0, stop_token=2,
                         prompt=np.array([[1, 3], [0, 4]], "int32"))
    np.testing.assert_array_equal(out["lengths"], [0, 0])
    np.testing.assert_array_equal(out["x"], np.full((2, 5), 2))


# --------------------------------------------------------------------- round trips
def test_config_and_saving_round_trip(tmp_path):
    model = make(CONFIGS["all"])
    inputs = make_inputs(model)
    testing.assert_config_round_trip(model, inputs)
    loaded = testing.assert_saving_round_trip(model, inputs, tmp_path)
    conditions = make_conditions(model)
    state = loaded.init_state(B, conditions)
    params, _ = loaded.step(np.full(B, V, "int32"), state,
                            loaded.step_conditions(conditions, state))
    np.testing.assert_allclose(params, model(inputs)[:, 0], atol=1e-5)


def test_layers_config_round_trip():
    attention = CachedMultiHeadAttention(2, 4, output_dim=8, dropout=0.1)
    clone = CachedMultiHeadAttention.from_config(attention.get_config())
    assert clone.get_config() == attention.get_config()
    block = TransformerBlock(8, 2, 16, use_cross_attention=True, memory_dim=5,
                             activation="gelu_erf")
    clone = TransformerBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()


def test_cached_attention_step_loop_equals_causal_call():
    layer = CachedMultiHeadAttention(2, 4, output_dim=8)
    x = tf.random.stateless_normal([B, 6, 8], seed=[1, 2])
    layer.build(x.shape)
    causal = np.tril(np.ones((6, 6), bool))
    full = layer(x, attention_mask=causal).numpy()
    cache_k = cache_v = tf.zeros([B, 2, 6, 4])
    slots = np.arange(6)
    for t in range(6):
        hit = tf.reshape(tf.equal(slots, t), [1, 1, 6, 1])
        bias = tf.reshape(tf.where(slots <= t, 0.0, -1e9), [1, 1, 1, 6])
        out, cache_k, cache_v = layer.step(x[:, t], cache_k, cache_v, hit, bias)
        np.testing.assert_allclose(out, full[:, t], atol=1e-5)


@pytest.mark.slow
def test_fit_lowers_the_loss():
    model = make(vocab_size=4, max_length=8)
    model.compile(optimizer="adam")
    x = np.tile(np.array([[0, 1, 2, 3, 0, 1, 2, 3]], "int32"), (16, 1))
    before = float(-np.mean(model.log_prob({"x": x})))
    model.fit(tf.data.Dataset.from_tensor_slices({"x": x}).batch(8), epochs=6, verbose=0)
    after = float(-np.mean(model.log_prob({"x": x})))
    assert after < before - 1.0


# --------------------------------------------------------------------- bad input
def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="divisible"):
        make(hidden_dim=10, num_heads=3)
    with pytest.raises(ValueError, match="position"):
        make(position="rotary")
    with pytest.raises(ValueError, match="memory_length"):
        make(memory_dim=4)
    with pytest.raises(ValueError, match="not both"):
        make(num_global_classes=2, global_condition_dim=3)
    with pytest.raises(ValueError, match="activation"):
        make(activation="gelu")


def test_bad_x():
    model = make()
    x = np.zeros((B, 4), "int32")
    with pytest.raises(ValueError, match="rank 2"):
        model({"x": x[:, :, None]})
    with pytest.raises(ValueError, match="integer"):
        model({"x": x.astype("float32")})
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        model({"x": x + V})
    with pytest.raises(ValueError, match=r"13 positions.*max_length is 12"):
        model({"x": np.zeros((B, L + 1), "int32")})
    with pytest.raises(ValueError, match="x_prev"):
        model.step(np.full(B, V + 1, "int32"), model.init_state(B))


def test_sequence_longer_than_cache_in_a_graph():
    model = make()
    call = tf.function(lambda x: model({"x": x}),
                       input_signature=[tf.TensorSpec([None, None], tf.int32)])
    call(np.zeros((B, L), "int32"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_length"):
        call(np.zeros((B, L + 1), "int32"))


def test_step_and_prefill_beyond_capacity():
    model = make()
    state = model.init_state(B)
    full = dict(state, index=tf.fill([B], L))
    start = np.full(B, V, "int32")
    with pytest.raises(ValueError, match="index.*reaches 12.*maximum is 11"):
        model.step(start, full)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_length"):
        tf.function(model.step)(start, full)
    with pytest.raises(ValueError, match="reaches 13"):
        model.prefill(np.zeros((B, 4), "int32"), dict(state, index=tf.fill([B], 9)))
    _, ok = model.prefill(np.zeros((B, 3), "int32"), dict(state, index=tf.fill([B], 9)))
    np.testing.assert_array_equal(ok["index"], [L, L])
    with pytest.raises(ValueError, match="needs 13 cache positions; .*max_length is 12"):
        model.generate(batch_size=1, num_steps=L + 1, seed=0)
    with pytest.raises(ValueError, match="prompt and steps.*needs 13"):
        model.generate(num_steps=L - 2, seed=0, prompt=np.zeros((1, 3), "int32"))
    with pytest.raises(ValueError, match="needs 13"):
        model.generate_from_noise(np.zeros((1, L + 1, 1), "float32"))
    out = model.generate_from_noise(np.zeros((1, L - 3, 1), "float32"),
                                    prompt=np.zeros((1, 3), "int32"))
    assert out["x"].shape == (1, L - 3)


def test_missing_and_malformed_conditions():
    model = make(CONFIGS["all"])
    inputs = make_inputs(model)
    conditions = make_conditions(model)
    with pytest.raises(ValueError, match=r"requires \['global_condition'\].*received only "
                                         r"\['local_condition'\]"):
        model({"x": inputs["x"], "local_condition": inputs["local_condition"]})
    with pytest.raises(ValueError, match=r"requires \['local_condition'\] in `init_state`"):
        model.init_state(B, {"global_condition": conditions["global_condition"]})
    state = model.init_state(B, conditions)
    with pytest.raises(ValueError, match=r"requires \['global_condition'\] in `step`"):
        model.step(np.full(B, V, "int32"), state)
    with pytest.raises(ValueError, match="takes no `local_condition`"):
        model.step(np.full(B, V, "int32"), state, conditions)
    with pytest.raises(ValueError, match=r"memory_length, memory_dim.*\(2, 3, 5\)"):
        model.init_state(B, dict(conditions, local_condition=np.zeros((B, 3, 5), "float32")))
    with pytest.raises(ValueError, match=r"ids in \[0, 3\)"):
        model(dict(inputs, global_condition=np.array([0, 3], "int32")))
    with pytest.raises(ValueError, match="batch 2; `batch_size` is 3"):
        model.init_state(3, conditions)
    with pytest.raises(ValueError, match="takes no"):
        make()({"x": inputs["x"], "global_condition": np.array([0, 1], "int32")})
    with pytest.raises(ValueError, match="finite"):
        vector = make(CONFIGS["global_vector"])
        vector(dict(make_inputs(vector), global_condition=np.full((B, 4), np.nan, "float32")))
