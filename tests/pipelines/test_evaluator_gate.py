"""The Evaluator's gate: a model of noise (or of the marginal alone) does not beat the unigram
baseline and is not blessed; the unigram baseline is the train split's frequencies."""

import math

import numpy as np

from keras_ar.models import WaveNet
from pipelines import config as config_lib
from pipelines.components import evaluator


def test_noise_fails_the_unigram_gate_and_a_better_model_passes():
    gate = config_lib.EvaluationConfig(max_bits_per_sample=8.5)
    assert "does not beat the unigram baseline" in evaluator.gate(8.0, gate, unigram=6.2)[0]
    assert evaluator.gate(6.2, gate, unigram=6.2)  # equal to the marginal: not blessed
    assert evaluator.gate(4.7, gate, unigram=6.2) == []
    off = config_lib.EvaluationConfig(max_bits_per_sample=8.5, beat_unigram=False)
    assert evaluator.gate(8.0, off, unigram=6.2) == []


def test_unigram_bits_are_the_cross_entropy_of_train_frequencies():
    model = WaveNet(num_classes=4, dilations=[1], residual_channels=2, skip_channels=2)
    train = [{"x": np.array([[0, 0, 0, 1]] * 3, "int32")}]  # counts + 1: [10, 4, 1, 1]
    test = [{"x": np.array([[0, 1]], "int32")}]
    p = np.array([10, 4, 1, 1]) / 16
    expected = -(math.log2(p[0]) + math.log2(p[1])) / 2
    assert abs(evaluator._unigram_bits(model, train, test) - expected) < 1e-9
    assert evaluator._unigram_bits(model, train, test) < math.log2(4)  # below uniform noise


def test_the_baseline_is_never_worse_than_noise():
    model = WaveNet(num_classes=4, dilations=[1], residual_channels=2, skip_channels=2)
    train = [{"x": np.zeros((1, 4), "int32")}]  # only 0 seen: 3 of the test values are rare
    test = [{"x": np.array([[1, 2, 3, 3]], "int32")}]
    assert evaluator._unigram_bits(model, train, test) == math.log2(4)


def test_bits_count_only_the_positions_before_lengths():
    """Padding is neither scored nor counted: a padded window scores as its valid prefix."""
    import keras

    keras.utils.set_random_seed(0)
    model = WaveNet(num_classes=8, dilations=[1, 2], residual_channels=4, skip_channels=4)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 8, (2, 12)).astype("int32")
    padded = x.copy()
    padded[1, 5:] = 7
    lengths = np.array([12, 5], "int32")
    feeds = [{"x": padded, "lengths": lengths}]
    positions = sum(evaluator._valid_positions(f) for f in feeds)
    assert positions == 17
    got = evaluator._bits(model.log_prob, feeds, positions)
    nats = -(float(model.log_prob({"x": x[:1]})[0]) + float(model.log_prob({"x": x[1:, :5]})[0]))
    assert abs(got - nats / 17 / math.log(2)) < 1e-5
    train = [{"x": np.array([[0, 0, 3, 3]], "int32"), "lengths": np.array([2], "int32")}]
    np.testing.assert_array_equal(evaluator._valid_values(train[0]), [0, 0])


def test_real_valued_baseline_is_the_train_marginal_gaussian():
    from keras_ar.models import ContinuousSequenceModel

    model = ContinuousSequenceModel(feature_dim=2, hidden_dim=4, num_layers=1)
    rng = np.random.default_rng(1)
    train = [{"x": rng.normal(3.0, 2.0, (64, 10, 2)).astype("float32"),
              "lengths": np.full(64, 10, "int32")}]
    test = [{"x": rng.normal(3.0, 2.0, (32, 10, 2)).astype("float32"),
             "lengths": np.full(32, 10, "int32")}]
    got = evaluator._unigram_bits(model, train, test)
    # differential entropy of N(3, 4) per scalar, plus the stop: log 10 + 9 log(10/9) nats
    # per 10 frames of 2 scalars
    expected = (0.5 * math.log(2 * math.pi * math.e * 4.0)
                + (math.log(10) + 9 * math.log(10 / 9)) / 20) / math.log(2)
    assert abs(got - expected) < 0.1, (got, expected)
    shifted = [{"x": test[0]["x"] + 10.0, "lengths": test[0]["lengths"]}]
    assert evaluator._unigram_bits(model, train, shifted) > got + 5  # far from the marginal
