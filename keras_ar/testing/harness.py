"""Behavioural checks every model must pass: cached step == teacher forcing, causality,
config and saving round trips. Each check can fail: it compares two computations that share
no code path beyond the layers' weights."""

import numpy as np
import tensorflow as tf

from keras_ar import contract


def _conditions(inputs):
    return {k: inputs[k] for k in contract.CONDITION_KEYS if k in inputs}


def shift_right(model, x_seq):
    """x [B, T, *event] -> the x_prev stream [start, x_0, ..., x_{T-2}]."""
    x_seq = np.asarray(x_seq)
    start = np.full((x_seq.shape[0], 1) + x_seq.shape[2:], model.start_id, dtype=x_seq.dtype)
    return np.concatenate([start, x_seq[:, :-1]], axis=1)


def step_through(model, inputs, state=None, start=0):
    """Run `step` over every position; returns (params [B, T, P], final state)."""
    conditions = _conditions(inputs)
    x_seq = np.asarray(model.to_sequence(tf.convert_to_tensor(inputs[contract.X])))
    x_prev_seq = shift_right(model, x_seq)
    batch = x_seq.shape[0]
    if state is None:
        state = model.init_state(batch, conditions)
    outputs = []
    for t in range(start, x_seq.shape[1]):
        step_conditions = model.step_conditions(conditions, state)
        params, state = model.step(x_prev_seq[:, t], state, step_conditions)
        outputs.append(np.asarray(params))
    return np.stack(outputs, axis=1), state


def assert_step_consistency(model, inputs, atol=1e-5, split=None):
    """A loop of `step`, and `prefill` then `step`, reproduce `model(inputs)`; the states agree.
    """
    full = np.asarray(model.params_to_sequence(model(inputs, training=False)))
    stepped, step_state = step_through(model, inputs)
    np.testing.assert_allclose(stepped, full, atol=atol, rtol=0,
                               err_msg="step loop != teacher-forced params")
    conditions = _conditions(inputs)
    x_seq = np.asarray(model.to_sequence(tf.convert_to_tensor(inputs[contract.X])))
    x_prev_seq = shift_right(model, x_seq)
    length = x_seq.shape[1]
    split = length // 2 if split is None else split
    state = model.init_state(x_seq.shape[0], conditions)
    prefilled, state = model.prefill(x_prev_seq[:, :split], state, conditions)
    np.testing.assert_allclose(np.asarray(prefilled), full[:, :split], atol=atol, rtol=0,
                               err_msg="prefill != teacher-forced params")
    rest, state = step_through(model, inputs, state=state, start=split)
    np.testing.assert_allclose(rest, full[:, split:], atol=atol, rtol=0,
                               err_msg="prefill + step != teacher-forced params")
    for key in step_state:
        np.testing.assert_allclose(np.asarray(state[key]), np.asarray(step_state[key]),
                                   atol=atol, rtol=0,
                                   err_msg=f"state `{key}` after prefill+step != after steps")
    return full


def assert_causal(model, inputs, perturb, atol=1e-6, positions=None):
    """Perturbing x_{>t} leaves params_{<=t} unchanged, and x_t changes some later params.

    `perturb(x_seq, t)` returns a copy of the generation-order values with positions > t
    changed. Positions are checked in generation order.
    """
    base = np.asarray(model.params_to_sequence(model(inputs, training=False)))
    x_seq = np.asarray(model.to_sequence(tf.convert_to_tensor(inputs[contract.X])))
    length = x_seq.shape[1]
    changed_any = False
    for t in positions if positions is not None else range(length - 1):
        x_new = perturb(x_seq.copy(), t)
        new_inputs = dict(inputs)
        new_inputs[contract.X] = _from_sequence(model, x_new, inputs[contract.X])
        out = np.asarray(model.params_to_sequence(model(new_inputs, training=False)))
        np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], atol=atol, rtol=0,
                                   err_msg=f"params at <= {t} depend on x > {t}")
        changed_any |= bool(np.abs(out[:, t + 1:] - base[:, t + 1:]).max() > atol)
    assert changed_any, "perturbing later values changed nothing: the test is vacuous"


def _from_sequence(model, x_seq, template):
    return np.reshape(x_seq, np.shape(template)).astype(np.asarray(template).dtype)


def assert_config_round_trip(model, inputs, atol=1e-6):
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(clone(inputs)), np.asarray(model(inputs)),
                               atol=atol, rtol=0)
    return clone


def assert_saving_round_trip(model, inputs, directory, atol=1e-6):
    import keras

    path = str(directory) + "/model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)),
                               atol=atol, rtol=0)
    return loaded


def steps_like_chunk(model, x_prev, state, noise, controls, conditions, forced=None,
                     stop_token=None):
    """The reference for `sample_chunk`: one `sample_step` per position from the host.

    `conditions` are whole (as in `inputs`); `forced` (values [B, K, *event], count [B]);
    returns (x [B, K, *event], state, lengths [B], ended [B]) with `sample_chunk`'s stop
    semantics."""
    x_prev = np.asarray(x_prev)
    batch, steps = noise.shape[:2]
    done = np.zeros(batch, bool)
    lengths = np.full(batch, steps, np.int32)
    out = []
    for j in range(steps):
        step_conditions = model.step_conditions(conditions, state) if conditions else None
        x_j, params, state = model.sample_step(x_prev, state, noise[:, j], *controls,
                                               conditions=step_conditions)
        x_j = np.array(x_j)
        sampled = np.ones(batch, bool) if forced is None else j >= forced[1]
        if forced is not None:
            x_j[~sampled] = forced[0][~sampled, j]
        if model.samples_stop:
            x_j[done] = 0
            fired = sampled & ~done & np.asarray(model.stop_flags(
                tf.constant(x_j), params, noise[:, j], controls[0]))
            lengths = np.where(fired, j + 1, lengths)
            done |= fired
        elif stop_token is not None:
            x_j[done] = stop_token
            hit = sampled & ~done & np.all(x_j.reshape(batch, -1) == stop_token, axis=1)
            lengths = np.where(hit, j, lengths)
            done |= hit
        out.append(x_j)
        x_prev = x_j
        if (model.samples_stop or stop_token is not None) and done.all():
            break  # the loop leaves once every row has ended; the rest is padding
    x = np.stack(out, axis=1)
    pad = 0 if model.samples_stop else stop_token
    x = np.concatenate([x, np.full((batch, steps - len(out)) + x.shape[2:], pad, x.dtype)], 1)
    return x, state, lengths, done


def assert_chunk_matches_steps(model, conditions, steps, seed=0, batch=2, forced_count=None,
                               stop_token=None, atol=1e-5, state=None):
    """`sample_chunk` of `steps` == `steps` host `sample_step` calls: identical samples,
    lengths and stops; every state entry within `atol`. Starts from `state` (default:
    `init_state`) at x_prev = start_id; returns (chunk out, chunk state)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(size=(batch, steps) + tuple(model.noise_spec)).astype("float32")
    controls = (np.where(np.arange(batch) % 2 == 0, 1.0, 0.9).astype("float32"),
                np.where(np.arange(batch) % 2 == 0, 0, 3).astype("int32"),
                np.where(np.arange(batch) % 2 == 0, 1.0, 0.95).astype("float32"))
    if state is None:
        state = model.init_state(batch, conditions or None)
    x_prev = np.full((batch,) + tuple(model.event_shape), model.start_id,
                     model.x_dtype.as_numpy_dtype)
    forced = None
    if forced_count is not None:
        values = np.asarray(model.generate_from_noise(
            rng.uniform(size=noise.shape).astype("float32"), conditions=conditions or None)[
                contract.X])[:, :steps]
        forced = (values, np.asarray(forced_count, np.int32))
    ref_x, ref_state, ref_lengths, ref_done = steps_like_chunk(
        model, x_prev, dict(state), noise, controls, conditions, forced, stop_token)
    chunk_conditions = model.chunk_conditions(conditions, state, steps) if conditions else None
    out, new_state = model.sample_chunk(
        x_prev, state, noise, *controls, conditions=chunk_conditions,
        prompt=None if forced is None else forced[0],
        prompt_length=None if forced is None else forced[1], stop_token=stop_token)
    np.testing.assert_array_equal(np.asarray(out[contract.X]), ref_x)
    np.testing.assert_array_equal(np.asarray(out[contract.LENGTHS]), ref_lengths)
    np.testing.assert_array_equal(np.asarray(out[contract.STOP]), ref_done)
    assert sorted(new_state) == sorted(ref_state)
    for key in ref_state:
        np.testing.assert_allclose(np.asarray(new_state[key]), np.asarray(ref_state[key]),
                                   atol=atol, err_msg=key)
    return out, new_state
