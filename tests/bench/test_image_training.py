"""The image benches' checkpoint selection (bench/image_training.py) on a tiny PixelCNN."""

import numpy as np

from bench import image_training as it
from keras_ar.models import PixelCNN


def _images(count, seed):
    return np.random.default_rng(seed).integers(0, 2, (count, 4, 4, 1)).astype("uint8")


def _trainer(ema=0.0):
    model = PixelCNN(image_shape=(4, 4, 1), num_levels=2, num_layers=1, filters=8)
    return it.Trainer(model, _images(64, 0), 2, learning_rate=1e-2, ema=ema)


def _nats(trainer, images):
    return it.test_nats_per_image(trainer.model, images, 2)


def test_checkpoint_keeps_the_best_weights_on_validation():
    trainer, val = _trainer(), _images(16, 1)
    trainer.train_for(max_steps=3)
    trainer.checkpoint(val)
    kept = [w.copy() for w in trainer.model.get_weights()]
    assert trainer.best[0] == _nats(trainer, val) and trainer.best[2] == 3
    rng = np.random.default_rng(2)  # worse weights, as after overfitting
    trainer.model.set_weights([w + rng.normal(0, 3, w.shape).astype(w.dtype)
                               for w in kept])
    worse = _nats(trainer, val)
    trainer.checkpoint(val)
    assert worse > trainer.best[0] and trainer.best[2] == 3  # not replaced
    trainer.train_for(max_steps=4)
    assert trainer.selected()[0] == 3
    trainer.finish()
    for got, want in zip(trainer.model.get_weights(), kept):
        np.testing.assert_array_equal(got, want)


def test_checkpoint_scores_the_averaged_weights_and_trains_on():
    trainer, val = _trainer(ema=0.9), _images(16, 1)
    trainer.train_for(max_steps=5)
    own = [w.copy() for w in trainer.model.get_weights()]
    averaged = [v.numpy() for v in trainer.model.optimizer._model_variables_moving_average]
    trainer.checkpoint(val)
    for got, want in zip(trainer.model.get_weights(), own):  # training weights restored
        np.testing.assert_array_equal(got, want)
    for got, want in zip(trainer.best[1], averaged):
        np.testing.assert_array_equal(got, want)
    assert not all(np.array_equal(a, b) for a, b in zip(own, averaged))


def test_train_models_tests_the_selected_checkpoint():
    factory = lambda: PixelCNN(image_shape=(4, 4, 1), num_levels=2, num_layers=1, filters=8)
    val, test = _images(16, 1), _images(16, 3)
    trainers, nats = it.train_models({"m": factory}, _images(64, 0), test, 2, budget_s=0.6,
                                     slice_s=0.2, count_tracing=False,
                                     recipe={"learning_rate": 1e-2}, val=val)
    trainer = trainers["m"]
    steps, wall = trainer.selected()
    assert 1 <= steps <= trainer.steps and wall <= trainer.wall
    np.testing.assert_allclose(nats["m"], _nats(trainer, test), rtol=1e-6)
    np.testing.assert_allclose(_nats(trainer, val), trainer.best[0], rtol=1e-6)
