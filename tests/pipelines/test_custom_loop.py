"""custom_loop.fit (the Trainer's multi_worker loop) makes the same updates as Keras' fit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ar.models import WaveNet
from pipelines.components import custom_loop
from pipelines.data import make_dataset
from tests.pipelines import helpers


def _train(examples, use_fit):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    data = helpers.data_config(examples, window=64, batch_size=4)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = WaveNet(**helpers.TINY_WAVENET)
        model.compile(optimizer=keras.optimizers.Adam(1e-2, use_ema=True))
        model.optimizer.build(model.trainable_variables)
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: make_dataset(data, "train", ctx))
    if use_fit:
        history = model.fit(dataset, epochs=2, steps_per_epoch=2, verbose=0)
    else:
        history = custom_loop.fit(model, strategy, dataset, 2, 2, callbacks=[])
    return model, history


@pytest.mark.slow
def test_custom_loop_matches_fit_under_mirrored(tmp_path):
    examples = helpers.write_examples(tmp_path / "ex", "audio")
    fitted, fit_history = _train(examples, use_fit=True)
    looped, loop_history = _train(examples, use_fit=False)
    assert int(looped.optimizer.iterations.numpy()) == 4
    np.testing.assert_allclose(loop_history.history["loss"], fit_history.history["loss"],
                               rtol=1e-4)
    for a, b in zip(fitted.get_weights(), looped.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)
