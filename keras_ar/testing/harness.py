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
