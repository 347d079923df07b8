"""Bad input gets a ValueError (eager) or InvalidArgumentError (compiled) naming the problem."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ar.models import WaveNet


@pytest.fixture(scope="module")
def model():
    return WaveNet(num_classes=8, dilations=[1, 2], residual_channels=4, skip_channels=4,
                   num_global_classes=2, local_condition_dim=3, local_hop=2)


def inputs(**overrides):
    out = {"x": np.zeros((2, 6), "int32"), "global_condition": np.array([0, 1], "int32"),
           "local_condition": np.zeros((2, 3, 3), "float32")}
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize("overrides,match", [
    ({"x": np.zeros((2, 6, 1), "int32")}, r"`x` must have rank 2.*\(2, 6, 1\)"),
    ({"x": np.zeros((2, 6), "float32")}, r"integer class ids.*float32"),
    ({"x": np.full((2, 6), 8, "int32")}, r"ids in \[0, 8\); received values in \[8, 8\]"),
    ({"global_condition": None}, r"requires conditions \['global_condition'\]"),
    ({"global_condition": np.array([0, 5], "int32")}, r"global_condition.*\[0, 2\)"),
    ({"local_condition": np.zeros((2, 3, 4), "float32")}, r"local_condition.*3 entries"),
    ({"local_condition": np.zeros((2, 2, 3), "float32")}, r"2 frames.*at least 3"),
    ({"local_condition": np.full((2, 3, 3), np.nan, "float32")}, r"finite.*18 NaN"),
])
def test_eager_errors(model, overrides, match):
    with pytest.raises(ValueError, match=match):
        model(inputs(**overrides))


def test_unconfigured_condition_is_rejected():
    plain = WaveNet(num_classes=8, dilations=[1], residual_channels=4, skip_channels=4)
    with pytest.raises(ValueError, match=r"takes no \['global_condition'\]"):
        plain({"x": np.zeros((1, 3), "int32"), "global_condition": np.zeros([1], "int32")})


def test_state_errors(model):
    state = model.init_state(2, {"global_condition": np.array([0, 1], "int32"),
                                 "local_condition": np.zeros((2, 3, 3), "float32")})
    cond = {"global_condition": np.array([0, 1], "int32"),
            "local_condition": np.zeros((2, 3), "float32")}
    with pytest.raises(ValueError, match=r"missing \['buffer_1'\]"):
        model.step(np.zeros([2], "int32"), {k: v for k, v in state.items() if k != "buffer_1"},
                   cond)
    bad = dict(state, buffer_1=tf.zeros([2, 5, 4]))
    with pytest.raises(ValueError, match=r"`buffer_1` must be float32\(None, 2, 4\)"):
        model.step(np.zeros([2], "int32"), bad, cond)
    with pytest.raises(ValueError, match=r"x_prev.*\[0, 9\)"):
        model.step(np.array([9, 0], "int32"), state, cond)


def test_compiled_graph_raises_invalid_argument(model):
    fn = tf.function(lambda x: model(inputs(x=x)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must hold ids < 8"):
        fn(tf.constant(np.full((2, 6), 9, "int32")))


def test_generation_longer_than_the_local_frames_is_refused(model):
    conditions = {"global_condition": np.array([0, 1], "int32"),
                  "local_condition": np.zeros((2, 3, 3), "float32")}  # 3 frames x hop 2
    noise = np.zeros((2, 7, 1), "float32")
    with pytest.raises(ValueError, match=r"must cover.*reaches 7, the maximum is 6"):
        model.generate_from_noise(noise, conditions=conditions)
    with pytest.raises(ValueError, match="must cover.*reaches 7"):  # checked before tracing
        model.generate(batch_size=2, num_steps=5, conditions=conditions,
                       prompt=np.zeros((2, 2), "int32"))
    out = model.generate_from_noise(noise[:, :6], conditions=conditions)
    assert out["x"].shape == (2, 6)
