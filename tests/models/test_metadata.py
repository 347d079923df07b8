"""A model's `metadata` (what decoding needs) is saved with it and checked at construction."""

import keras
import pytest

from keras_ar.models import CausalTransformer, WaveNet


def test_metadata_survives_config_and_saving(tmp_path):
    model = WaveNet(num_classes=8, dilations=[1], residual_channels=4, skip_channels=4,
                    metadata={"sample_rate": 8000, "speakers": ["a", "b"]})
    assert WaveNet.from_config(model.get_config()).metadata == model.metadata
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.metadata == {"sample_rate": 8000, "speakers": ["a", "b"]}
    plain = CausalTransformer(vocab_size=4, num_layers=1, num_heads=1, hidden_dim=4,
                              max_length=4)
    assert plain.metadata == {} and "metadata" not in plain.get_config()


def test_metadata_must_be_json():
    with pytest.raises(ValueError, match="metadata.*dict"):
        WaveNet(num_classes=8, dilations=[1], metadata=[1, 2])
    with pytest.raises(ValueError, match="JSON values"):
        WaveNet(num_classes=8, dilations=[1], metadata={"rate": object()})
