"""XLA drops graph asserts: models compiled with `jit_compile=True` check data before the step.

The control test shows the problem the checks solve: Keras' own jit-compiled train step,
reached past our `train_on_batch`, trains on out-of-range ids without an error.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ar.models import ContinuousSequenceModel, GatedPixelCNN, WaveNet
from pipelines.components.trainer import _train_dataset

K = 8


def wavenet(jit_compile=True):
    keras.utils.set_random_seed(0)
    model = WaveNet(num_classes=K, dilations=[1, 2], residual_channels=8, skip_channels=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit_compile)
    return model


def ids(bad=False, n=8, length=6):
    x = (np.arange(n * length).reshape(n, length) % K).astype("int32")
    if bad:
        x[n - 1, 3] = K  # one id out of range, in the last row
    return x


def weights(model):
    return [w.copy() for w in model.get_weights()]


def assert_unchanged(model, before):
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # XLA compiles
def test_keras_jit_step_alone_trains_on_bad_ids_silently():
    model = wavenet()
    model.train_on_batch({"x": ids()})  # builds the optimizer and compiles the step
    before = weights(model)
    keras.Model.train_on_batch(model, {"x": ids(bad=True)})  # past our checks: no error
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights()))


@pytest.mark.slow  # XLA compiles
def test_jit_fit_on_a_dataset_raises_before_the_bad_batch_trains():
    model = wavenet()
    model.fit(tf.data.Dataset.from_tensor_slices({"x": ids()}).batch(8), verbose=0)
    before = weights(model)
    bad = tf.data.Dataset.from_tensor_slices({"x": ids(bad=True)}).batch(8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`x` must hold ids < 8"):
        model.fit(bad, verbose=0)
    assert_unchanged(model, before)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`x` must hold ids < 8"):
        model.evaluate(bad, verbose=0)
    good = tf.data.Dataset.from_tensor_slices({"x": ids()}).batch(8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`x` must hold ids < 8"):
        model.fit(good, validation_data=bad, verbose=0)


def test_jit_training_on_arrays_raises_value_error_naming_the_range():
    model = wavenet()
    model.train_on_batch({"x": ids()})
    before = weights(model)
    with pytest.raises(ValueError, match=r"`x` must hold ids in \[0, 8\); received .*\[0, 8\]"):
        model.train_on_batch({"x": ids(bad=True)})
    with pytest.raises(ValueError, match=r"`x` must hold ids in \[0, 8\)"):
        model.fit({"x": ids(bad=True)}, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=r"`x` must hold ids in \[0, 8\)"):
        model.predict({"x": ids(bad=True)}, verbose=0)
    assert_unchanged(model, before)


@pytest.mark.slow  # XLA compiles
def test_jit_and_plain_training_take_the_same_steps():
    losses = {}
    for jit in (False, True):
        model = wavenet(jit_compile=jit)
        losses[jit] = [float(model.train_on_batch({"x": ids()})) for _ in range(3)]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
    assert losses[True][-1] < losses[True][0]


@pytest.mark.slow
def test_jit_gated_pixel_cnn_checks_levels_and_class_ids():
    keras.utils.set_random_seed(0)
    model = GatedPixelCNN(image_shape=(2, 2, 1), num_levels=4, num_layers=1, filters=4,
                          num_global_classes=2)
    model.compile(optimizer="adam", jit_compile=True)
    x = np.zeros((4, 2, 2, 1), "int32")
    labels = np.array([0, 1, 0, 1], "int32")
    model.train_on_batch({"x": x, "global_condition": labels})
    for bad, message in (({"x": x + 4}, "`x` must hold ids < 4"),
                         ({"global_condition": labels + 1},
                          "`global_condition` must hold ids < 2")):
        data = tf.data.Dataset.from_tensors({"x": x, "global_condition": labels, **bad})
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            model.fit(data, verbose=0)


@pytest.mark.slow  # XLA compiles
def test_jit_continuous_model_checks_values_within_lengths_only():
    keras.utils.set_random_seed(0)
    model = ContinuousSequenceModel(feature_dim=2, num_mixtures=2, num_layers=2, hidden_dim=4,
                                    max_length=8)
    model.compile(optimizer="adam", jit_compile=True)
    x = np.zeros((2, 5, 2), "float32")
    x[1, 4] = np.nan
    lengths = np.array([5, 3], "int32")  # the NaN lies in row 1's padding: allowed
    model.train_on_batch({"x": x, "lengths": lengths})
    with pytest.raises(tf.errors.InvalidArgumentError, match="`x` must be finite"):
        model.fit(tf.data.Dataset.from_tensors({"x": x, "lengths": np.array([5, 5], "int32")}),
                  verbose=0)


def test_pipeline_training_dataset_is_checked_for_a_jit_model():
    model = wavenet()

    def make_dataset(data, split, ctx):
        return tf.data.Dataset.from_tensor_slices({"x": ids(bad=True)}).batch(8)

    strategy = tf.distribute.get_strategy()
    plain = next(iter(_train_dataset(strategy, None, make_dataset)))
    assert int(tf.reduce_max(plain["x"])) == K
    with pytest.raises(tf.errors.InvalidArgumentError, match="`x` must hold ids < 8"):
        next(iter(_train_dataset(strategy, None, make_dataset, checked_by=model)))
