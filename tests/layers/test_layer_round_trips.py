"""get_config/from_config round trips with identical outputs for the sequence layers and heads."""

import numpy as np
import pytest

from keras_ar.heads import CategoricalHead, DiscretizedLogisticMixtureHead, MixtureDensityHead
from keras_ar.layers import (
    CausalConv1D,
    ContextStack,
    GatedResidualBlock,
    LocalUpsampler,
    ShiftedConv2D,
)

RNG = np.random.default_rng(0)
SEQ = RNG.normal(size=(2, 9, 4)).astype("float32")


def _clone(layer):
    clone = layer.__class__.from_config(layer.get_config())
    return clone


@pytest.mark.parametrize("make,call", [
    (lambda: CausalConv1D(3, kernel_size=3, dilation_rate=2), lambda layer: layer(SEQ)),
    (lambda: GatedResidualBlock(4, 5, kernel_size=2, dilation_rate=4),
     lambda layer: layer(SEQ)[0]),
    (lambda: LocalUpsampler(3, 4, channels=6), lambda layer: layer(SEQ)),
    (lambda: LocalUpsampler(3, 4, mode="repeat"), lambda layer: layer(SEQ)),
    (lambda: ContextStack(2, [1, 2], 4, channels=3, output_channels=5), lambda layer: layer(SEQ)),
])
def test_layer_config_round_trip_gives_identical_outputs(make, call):
    layer = make()
    if not layer.built:
        layer.build((None, None, 4))
    clone = _clone(layer)
    clone.build((None, None, 4))
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(np.asarray(call(clone)), np.asarray(call(layer)), atol=1e-6)


def test_shifted_conv_masked_rows_round_trip_and_reject_strides():
    image = RNG.normal(size=(2, 5, 6, 3)).astype("float32")
    layer = ShiftedConv2D(4, (2, 3), "down", masked_rows=1)
    layer.build((None, None, None, 3))
    assert tuple(layer.kernel.shape) == (3, 3, 3, 4)
    clone = _clone(layer)
    clone.build((None, None, None, 3))
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(np.asarray(clone(image)), np.asarray(layer(image)), atol=1e-6)
    with pytest.raises(ValueError, match="masked_rows"):
        ShiftedConv2D(4, (2, 3), "down", strides=2, masked_rows=1)


@pytest.mark.parametrize("head,x", [
    (CategoricalHead(5), RNG.integers(0, 5, (2, 9))),
    (DiscretizedLogisticMixtureHead(num_mixtures=2, num_channels=3, num_levels=8),
     RNG.integers(0, 8, (2, 9, 3))),
    (MixtureDensityHead(feature_dim=2, num_mixtures=3), RNG.normal(size=(2, 9, 2))),
])
def test_head_config_round_trip_gives_identical_log_prob(head, x):
    params = RNG.normal(size=(2, 9, head.num_params)).astype("float32")
    clone = _clone(head)
    assert clone.get_config() == head.get_config()
    x = np.asarray(x, "int32" if head.x_dtype == "int32" else "float32")
    np.testing.assert_allclose(np.asarray(clone.log_prob(params, x)),
                               np.asarray(head.log_prob(params, x)), atol=1e-6)
