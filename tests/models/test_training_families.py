"""Training smoke for the other sequence families: Mirrored and mixed_float16
(CausalTransformer)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ar.models import CausalTransformer
from tests.models.test_training import K, counting_sequences, dataset


def make_transformer():
    return CausalTransformer(vocab_size=K, num_layers=1, num_heads=2, hidden_dim=16,
                             max_length=16)


@pytest.mark.slow
def test_transformer_fit_under_mirrored_strategy():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    strategy = tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = make_transformer()
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = model.fit(dataset(), epochs=6, verbose=0).history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses


@pytest.mark.slow
def test_transformer_mixed_float16_stays_finite():
    keras.config.set_dtype_policy("mixed_float16")
    keras.utils.set_random_seed(0)
    model = make_transformer()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = model.fit(dataset(), epochs=3, verbose=0).history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    log_prob = model.log_prob({"x": counting_sequences(4)})
    assert log_prob.dtype == tf.float32 and np.isfinite(log_prob.numpy()).all()
    _, state = model.step(np.zeros([2], "int32"), model.init_state(2))
    assert all(v.dtype in (tf.float32, tf.int32) for v in state.values())
