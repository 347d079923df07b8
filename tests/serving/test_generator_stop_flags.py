"""Models that sample their own stop flag (the continuous-sequence model): the Generator ends
each row where the Keras model does, on the step loop (sample_step's `stop` output) and on
the in-graph `generate` loop (its `lengths`), from an exported SavedModel and TFLite file."""

import numpy as np
import pytest

from keras_ar import contract
from serving.generator import Generator, noise_for
from serving.saved_model_backend import SavedModelBackend

SIGNATURES = ("init_state", "prefill", "sample_step", "generate")
STEPS, BATCH, SEED = 12, 5, 3


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    from export.saved_model import export_saved_model
    from keras_ar.models import ContinuousSequenceModel

    keras.utils.set_random_seed(0)
    model = ContinuousSequenceModel(feature_dim=2, num_mixtures=2, num_layers=2,
                                    hidden_dim=4, max_length=16)
    path = tmp_path_factory.mktemp("continuous") / "1"
    export_saved_model(model, path, signatures=SIGNATURES)
    return model, path


def _keras(model, spec):
    out = model.generate_from_noise(noise_for(SEED, BATCH, STEPS, spec.noise_shape))
    return np.asarray(out[contract.X]), np.asarray(out[contract.LENGTHS])


def _check(out, x, lengths):
    np.testing.assert_array_equal(out["lengths"], lengths)
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(out["x"][row, :length], x[row, :length], atol=1e-5)
        assert not out["x"][row, length:].any()


def test_step_and_graph_loops_stop_where_keras_stops(exported):
    model, path = exported
    generator = Generator(SavedModelBackend(path))
    assert generator.spec.samples_stop
    x, lengths = _keras(model, generator.spec)
    assert 1 <= lengths.min() and lengths.min() < STEPS, lengths  # some rows stop early
    _check(generator.generate(STEPS, batch_size=BATCH, seed=SEED), x, lengths)
    _check(generator.generate(STEPS, batch_size=BATCH, seed=SEED, use_graph_loop=True),
           x, lengths)
    # a per-row limit below the sampled stop still cuts the row
    limits = np.minimum(lengths, 1)
    out = generator.generate(STEPS, batch_size=BATCH, seed=SEED, lengths=limits)
    np.testing.assert_array_equal(out["lengths"], limits)


@pytest.mark.slow
def test_tflite_step_loop_stops_where_keras_stops(exported, tmp_path):
    from export.tflite import export_tflite
    from serving.tflite_backend import TFLiteBackend

    model, path = exported
    export_tflite(model, tmp_path / "tflite", signatures=SIGNATURES, saved_model_dir=path)
    generator = Generator(TFLiteBackend(tmp_path / "tflite"))
    x, lengths = _keras(model, generator.spec)
    _check(generator.generate(STEPS, batch_size=BATCH, seed=SEED), x, lengths)
