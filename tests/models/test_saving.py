"""`keras.models.load_model` returns a compiled model that resumes `fit` with its optimizer
state, without warnings."""

import warnings

import keras
import numpy as np

from keras_ar.models import WaveNet


def test_load_model_resumes_fit_with_the_optimizer_state(tmp_path):
    model = WaveNet(num_classes=8, dilations=[1, 2], residual_channels=4, skip_channels=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(0).integers(0, 8, (8, 16)).astype("int32")
    model.fit(x, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.models.load_model(tmp_path / "m.keras")
    assert [str(w.message) for w in caught] == []
    assert loaded.compiled and int(loaded.optimizer.iterations) == 2
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))
    loaded.fit(x, epochs=1, batch_size=4, verbose=0)
    assert int(loaded.optimizer.iterations) == 4
