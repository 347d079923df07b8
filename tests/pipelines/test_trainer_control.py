"""Trainer: warm-up + cosine learning rate (values, save/load, resume), early stopping on the
validation split with the best epoch's weights saved (with and without EMA)."""

import json
import math

import keras
import numpy as np
import pytest

from pipelines import config as config_lib
from pipelines.components import training_control
from tests.pipelines import helpers
from tests.pipelines.test_trainer import _params, _spawn, _weights

LR, MIN_LR = 1e-2, 1e-4


def _expected_rate(step, warmup, steps):
    """The documented curve: linear from 0 over `warmup`, cosine to MIN_LR at `steps`."""
    if step < warmup:
        return LR * step / warmup
    fraction = min(step - warmup, steps - warmup) / (steps - warmup)
    return MIN_LR + (LR - MIN_LR) * 0.5 * (1 + math.cos(math.pi * fraction))


def test_warmup_cosine_follows_the_documented_curve():
    training = config_lib.TrainingConfig(steps=100, learning_rate=LR, lr_schedule="warmup_cosine",
                                         warmup_steps=10, min_learning_rate=MIN_LR)
    schedule = training_control.learning_rate(training)
    for step in (0, 1, 5, 9, 10, 11, 40, 55, 99, 100, 150):
        np.testing.assert_allclose(float(schedule(step)), _expected_rate(step, 10, 100),
                                   rtol=1e-5, atol=1e-9, err_msg=f"step {step}")
    assert training_control.learning_rate(config_lib.TrainingConfig(learning_rate=LR)) == LR


def test_schedule_survives_save_and_load_with_the_optimizer(tmp_path):
    from keras_ar.models import WaveNet

    training = config_lib.TrainingConfig(steps=20, learning_rate=LR, lr_schedule="warmup_cosine",
                                         warmup_steps=4, min_learning_rate=MIN_LR)
    keras.utils.set_random_seed(0)
    model = WaveNet(num_classes=8, dilations=[1, 2], residual_channels=4, skip_channels=4)
    model.compile(optimizer=keras.optimizers.Adam(training_control.learning_rate(training)))
    x = np.random.default_rng(0).integers(0, 8, (4, 16)).astype("int32")
    for _ in range(6):
        model.train_on_batch({"x": x})
    model.save(tmp_path / "m.keras")  # include_optimizer defaults to True
    loaded = keras.models.load_model(tmp_path / "m.keras")
    schedule = loaded.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert int(loaded.optimizer.iterations.numpy()) == 6
    rate = training_control.current_learning_rate(loaded.optimizer)
    np.testing.assert_allclose(rate, _expected_rate(6, 4, 20), rtol=1e-5)
    np.testing.assert_allclose(rate, training_control.current_learning_rate(model.optimizer))
    loaded.train_on_batch({"x": x})  # and it goes on along the curve
    np.testing.assert_allclose(training_control.current_learning_rate(loaded.optimizer),
                               _expected_rate(7, 4, 20), rtol=1e-5)


def _run(tmp_path, params, examples, name, key, env=None):
    return _spawn(tmp_path, params, examples, tmp_path / name, key=key, env=env, name=name)


def _finish(proc, code=0):
    output, _ = proc.communicate(timeout=400)
    assert proc.returncode == code, output
    return output


@pytest.mark.slow
def test_interrupted_and_resumed_run_has_the_same_rate_at_each_step(tmp_path):
    examples = helpers.write_examples(tmp_path / "ex", "audio")
    params = _params(examples, steps=10, steps_per_epoch=2, learning_rate=LR,
                     lr_schedule="warmup_cosine", warmup_steps=3, min_learning_rate=MIN_LR)
    whole = _run(tmp_path, params, examples, "whole", "whole")
    killed = _run(tmp_path, params, examples, "killed", "cut", env={"EXIT_AFTER_EPOCH": "2"})
    _finish(whole)
    assert "exiting after epoch 2" in _finish(killed, code=3)
    _finish(_run(tmp_path, params, examples, "resumed", "cut"))  # same key: resumes

    rates = json.loads((tmp_path / "whole" / "training.json").read_text())["learning_rates"]
    np.testing.assert_allclose(rates, [_expected_rate(s, 3, 10) for s in (2, 4, 6, 8, 10)],
                               rtol=1e-5)
    resume = json.loads((tmp_path / "resumed" / "resume.json").read_text())
    assert (resume["initial_epoch"], resume["initial_step"]) == (2, 4)
    np.testing.assert_allclose(resume["learning_rate"], _expected_rate(4, 3, 10), rtol=1e-6)
    summary = json.loads((tmp_path / "resumed" / "training.json").read_text())
    np.testing.assert_allclose(summary["learning_rates"], rates[2:], rtol=1e-6)
    assert summary["lr_schedule"]["name"] == "warmup_cosine"
    np.testing.assert_allclose(summary["lr_schedule"]["final_learning_rate"], MIN_LR,
                               rtol=1e-5)


def _speaker_shift(i):
    """Train on speaker 0's tone, validate on speaker 1's: the validation loss first falls
    (generic structure), then rises as the model fits the train tone."""
    return helpers.audio_record(i, speaker=0 if i < 12 else 1)


def _validation_bits(model_dir, examples, batches):
    """The saved model's loss on the validation batches the Trainer scored, in bits."""
    from pipelines.components import trainer
    from pipelines.data import make_dataset

    model = trainer.load_model(str(model_dir))
    model.compile()
    data = helpers.data_config(examples, window=128, batch_size=4)
    dataset = make_dataset(data, "eval", repeat=False).take(batches)
    loss = model.evaluate(dataset, verbose=0, return_dict=True)["loss"]
    return loss / (128 * math.log(2))


@pytest.mark.slow
@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_early_stopping_saves_the_best_validation_epoch(tmp_path, ema):
    examples = helpers.write_examples(tmp_path / "ex", "audio", make=_speaker_shift)
    params = _params(examples, steps=40, steps_per_epoch=2, learning_rate=0.05,
                     ema_momentum=ema, early_stopping_patience=1)
    _finish(_run(tmp_path, params, examples, "model", "key"))
    summary = json.loads((tmp_path / "model" / "training.json").read_text())
    stop = summary["early_stopping"]
    curve = summary["val_bits_per_position"]
    assert stop["stopped_early"] and stop["stopped_epoch"] == len(curve) < 20, summary
    assert summary["steps"] == 2 * len(curve) < 40
    best = int(np.argmin(curve))
    assert stop["best_epoch"] == best + 1 < len(curve)
    np.testing.assert_allclose(stop["best_value"], curve[best], atol=1e-5)
    assert curve[-1] > curve[best] + 1e-3  # the last epoch's weights are not the best
    # The saved model (EMA weights with EMA on) scores what the best epoch scored.
    saved = _validation_bits(tmp_path / "model", examples, 4)
    np.testing.assert_allclose(saved, curve[best], atol=1e-4)
    # raw.weights.h5 holds the same (best) weights as model.keras.
    from pipelines.components import trainer

    trainer.load_model(str(tmp_path / "model")).save_weights(str(tmp_path / "k.weights.h5"))
    raw, kept = (_weights(tmp_path / name) for name in ("model/raw.weights.h5",
                                                          "k.weights.h5"))
    assert kept and set(kept) <= set(raw)  # raw also holds the optimizer's variables
    for name in kept:
        np.testing.assert_array_equal(raw[name], kept[name], err_msg=name)


@pytest.mark.slow
def test_trainer_mixture_head_under_mixed_float16_and_xla(tmp_path):
    examples = helpers.write_examples(tmp_path / "ex", "audio")
    params = _params(examples, steps=8, steps_per_epoch=2, mixed_precision="mixed_float16",
                     jit_compile=True)
    params["model"]["params"].update(head="logistic_mixture", num_mixtures=3)
    _finish(_run(tmp_path, params, examples, "model", "key"))
    summary = json.loads((tmp_path / "model" / "training.json").read_text())
    losses = summary["losses"]
    assert summary["steps"] == 8 and len(losses) == 4
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
    assert np.isfinite(summary["val_bits_per_position"]).all()
    from pipelines.components import trainer

    model = trainer.load_model(str(tmp_path / "model"))
    assert model.head_type == "logistic_mixture"
    x = np.random.default_rng(0).integers(0, 256, (2, 64)).astype("int32")
    log_prob = model.log_prob({"x": x, "global_condition": np.array([0, 1], "int32")})
    assert np.isfinite(log_prob.numpy()).all()
