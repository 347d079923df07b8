"""Checks shared by the image-model tests: gradient causality, exact sampling, round trips."""

import itertools

import numpy as np
import tensorflow as tf

from keras_ar import contract


def conditions_of(inputs):
    return {k: v for k, v in inputs.items() if k != contract.X}


def dependency(model, inputs):
    """dep[p, c, q, c'] = True where params of pixel p, channel c depend on x at pixel q,
    channel c' (by gradients through the parallel pass on the pixel features)."""
    feats = tf.Variable(model.features(inputs[contract.X]))
    conditions = model._validate_conditions(conditions_of(inputs))
    h, w, c = model.image_shape
    per_channel = getattr(model.head, "num_classes", None)
    groups = c if per_channel is not None else 1
    with tf.GradientTape(persistent=True) as tape:
        params, _, _ = model._forward(feats, conditions)
        params = tf.reshape(params, [params.shape[0], h * w, groups, -1])
        outs = [tf.reduce_sum(params[:, p, g]) for p in range(h * w) for g in range(groups)]
    dep = np.zeros((h * w, groups, h * w, c), bool)
    for k, out in enumerate(outs):
        grad = tape.gradient(out, feats)
        dep[k // groups, k % groups] = np.abs(grad.numpy()).sum(0).reshape(h * w, c) > 0
    return dep


def assert_causal_by_gradients(model, inputs):
    """No dependence on pixels at/after p (or on later channels of p); some on earlier."""
    dep = dependency(model, inputs)
    num_pixels, groups = dep.shape[:2]
    for p, g in itertools.product(range(num_pixels), range(groups)):
        assert not dep[p, g, p + 1:].any(), f"pixel {p} depends on later pixels"
        if groups == 1:
            assert not dep[p, g, p].any(), f"pixel {p} depends on its own channels"
        else:
            assert not dep[p, g, p, g:].any(), f"pixel {p} channel {g} sees channel >= {g}"
        assert p == 0 or dep[p, :, :p].any(), f"pixel {p} sees no earlier pixel"
    for g in range(1, groups):  # relu units may be off at one pixel, not at all of them
        assert any(dep[p, g, p, :g].any() for p in range(num_pixels)), f"channel {g} ignores"
    return dep


def assert_samples_follow_teacher_forcing(model, x_seq, noise, prompt_len=0, conditions=None,
                                          temperature=1.0):
    """Every generated pixel is what the head draws from `model(image)` with the same noise."""
    image = model.decode(x_seq)
    inputs = dict(conditions or {})
    inputs[contract.X] = image
    params = model.params_to_sequence(model(inputs))
    batch = x_seq.shape[0]
    for p in range(prompt_len, x_seq.shape[1]):
        controls = (tf.fill([batch], float(temperature)), tf.zeros([batch], tf.int32),
                    tf.ones([batch]))
        drawn = model.head.sample(params[:, p], noise[:, p - prompt_len], *controls)
        np.testing.assert_array_equal(np.asarray(drawn), np.asarray(x_seq)[:, p],
                                      err_msg=f"pixel {p}")


def train_smoke(model_fn, x, conditions=None):
    """Build, compile and fit one epoch under a 2-device MirroredStrategy; finite loss.

    Reduction to one device instead of collectives: collective instance keys restart with
    each strategy, so two strategies training different models in one process collide."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "tests/conftest.py configures two logical CPU devices"
    strategy = tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    with strategy.scope():
        model = model_fn()
        model.compile(optimizer="adam")
    data = dict(conditions or {})
    data[contract.X] = x
    history = model.fit(tf.data.Dataset.from_tensor_slices(data).batch(4), epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"][0])
    return model
