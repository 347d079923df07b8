"""`model.summary()` works for every family and counts the model's parameters."""

import pytest

from keras_ar.models import (
    CausalTransformer,
    ContinuousSequenceModel,
    GatedPixelCNN,
    PixelCNN,
    PixelCNNPlusPlus,
    WaveNet,
)

FAMILIES = {
    "wavenet": lambda: WaveNet(num_classes=8, dilations=[1, 2], residual_channels=4,
                               skip_channels=4, num_global_classes=2),
    "transformer": lambda: CausalTransformer(vocab_size=6, num_layers=1, num_heads=2,
                                             hidden_dim=8, max_length=8),
    "pixel_cnn": lambda: PixelCNN(image_shape=(4, 4, 1), num_levels=4, num_layers=1,
                                  filters=4),
    "gated_pixel_cnn": lambda: GatedPixelCNN(image_shape=(4, 4, 1), num_levels=4,
                                             num_layers=1, filters=4),
    "pixel_cnn_plus_plus": lambda: PixelCNNPlusPlus(image_shape=(4, 4, 3), num_levels=8,
                                                    num_mixtures=2, num_layers=1, filters=4,
                                                    num_scales=2),
    "continuous": lambda: ContinuousSequenceModel(feature_dim=2, num_mixtures=2, num_layers=1,
                                                  hidden_dim=4, max_length=8),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_summary(name):
    model = FAMILIES[name]()
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert f"{model.count_params():,}" in text.replace("\u202f", ",")
