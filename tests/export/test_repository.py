"""TF Serving model repository: atomic versions, warm-up requests, server config."""

import pytest
import tensorflow as tf

from export import repository
from keras_ar import contract
from keras_ar.models import WaveNet

SIGNATURES = (contract.INIT_STATE, contract.STEP, contract.SAMPLE_STEP)


@pytest.mark.slow
def test_interrupted_export_leaves_no_version_then_writes_one(tmp_path, monkeypatch):
    from tensorflow_serving.apis import prediction_log_pb2

    model = WaveNet(num_classes=8, dilations=[1], residual_channels=4, skip_channels=4)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash while writing warm-up requests")

    monkeypatch.setattr(repository, "write_warmup", crash)
    with pytest.raises(KeyboardInterrupt):
        repository.write_version(model, tmp_path, "wavenet", signatures=SIGNATURES)
    leftovers = list((tmp_path / "wavenet").iterdir())
    assert leftovers == [], leftovers
    monkeypatch.undo()

    path = repository.write_version(model, tmp_path, "wavenet", signatures=SIGNATURES)
    assert path == tmp_path / "wavenet" / "1"
    assert (path / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "wavenet").iterdir()) == ["1"]
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in
            tf.data.TFRecordDataset(str(path / "assets.extra" / repository.WARMUP_FILE))]
    assert sorted(log.predict_log.request.model_spec.signature_name for log in logs) == sorted(
        SIGNATURES)
    loaded = tf.saved_model.load(str(path))
    step = [log for log in logs if log.predict_log.request.model_spec.signature_name == "step"]
    feeds = {k: tf.make_ndarray(v) for k, v in step[0].predict_log.request.inputs.items()}
    assert loaded.signatures["step"](**feeds)["params"].shape == (1, 8)
    config = (tmp_path / "models.config").read_text()
    assert 'name: "wavenet"' in config and 'base_path: "/models/wavenet"' in config
    assert "max_batch_size" in (tmp_path / "batching_parameters.txt").read_text()
    assert repository.next_version(tmp_path / "wavenet") == 2
    with pytest.raises(FileExistsError):
        repository.write_version(model, tmp_path, "wavenet", version=1, signatures=SIGNATURES)
