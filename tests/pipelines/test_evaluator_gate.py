"""The Evaluator's gate: a model of noise (or of the marginal alone) does not beat the unigram
baseline and is not blessed; the unigram baseline is the train split's frequencies."""

import math

import numpy as np

from pipelines import config as config_lib
from pipelines.components import evaluator
from keras_ar.models import WaveNet


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
