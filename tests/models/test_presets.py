"""`from_preset`: our own saved models by path - a .keras file, its directory or an export
directory that keeps the checkpoint - with the class checked and clear errors otherwise."""

import keras
import numpy as np
import pytest

from keras_ar.models import AutoregressiveModel, PixelCNN, WaveNet


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = WaveNet(num_classes=8, dilations=[1, 2], residual_channels=4, skip_channels=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(0).integers(0, 8, (8, 16)).astype("int32")
    model.fit(x, epochs=1, batch_size=4, verbose=0)
    root = tmp_path_factory.mktemp("preset")
    model.save(root / "model.keras")
    return model, x, root


def _same(model, loaded, x):
    np.testing.assert_allclose(loaded.log_prob(x).numpy(), model.log_prob(x).numpy(),
                               rtol=1e-6)


def test_a_file_its_directory_and_an_export_target_load_the_same_model(saved):
    model, x, root = saved
    (root / "export" / "tflite").mkdir(parents=True, exist_ok=True)
    for path in (root / "model.keras", root, root / "export" / "tflite"):
        loaded = AutoregressiveModel.from_preset(path)
        assert type(loaded) is WaveNet
        _same(model, loaded, x)
        assert int(loaded.optimizer.iterations) == 2  # compiled, optimizer state restored
    assert not WaveNet.from_preset(root, compile=False).compiled


def test_the_class_is_checked(saved):
    with pytest.raises(ValueError, match="holds a WaveNet, not a keras_ar PixelCNN"):
        PixelCNN.from_preset(saved[2])


def test_bad_paths_say_what_was_received_and_expected(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AutoregressiveModel.from_preset(tmp_path / "nowhere.keras")
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="serving.Generator.from_preset"):
        AutoregressiveModel.from_preset(tmp_path / "artifact")
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"'\.h5' file"):
        AutoregressiveModel.from_preset(tmp_path / "weights.h5")
