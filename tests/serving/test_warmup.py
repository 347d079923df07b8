"""Warm-up requests written with a pushed version are valid PredictRequests for exactly the
version's signatures, the server replays every one of them at load (answering as the model
does), and a version whose warm-up request fails is not served."""

import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from export import repository, verify
from export.manifest import read_manifest
from keras_ar import contract
from keras_ar.models import WaveNet
from serving.model_manager import ModelConfig, ModelManager
from serving.servable import Servable, read_signature_defs


def _logs(version_dir):
    path = version_dir / "assets.extra" / repository.WARMUP_FILE
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(path))]


def _write(version_dir, logs):
    path = version_dir / "assets.extra" / repository.WARMUP_FILE
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    model = WaveNet(num_classes=16, dilations=[1, 2], residual_channels=4, skip_channels=4,
                    num_global_classes=2, local_condition_dim=2, local_hop=2)
    base = tmp_path_factory.mktemp("repository")
    path = repository.write_version(model, base, "voice")
    return model, base, path


@pytest.fixture
def replayed(monkeypatch):
    """[(model name, version, signature, feeds, outputs)] of every Servable.predict call."""
    calls = []
    original = Servable.predict

    def spy(self, signature_name, feeds, output_filter=()):
        outputs, name = original(self, signature_name, feeds, output_filter)
        calls.append((self.name, self.version, name, feeds, outputs))
        return outputs, name

    monkeypatch.setattr(Servable, "predict", spy)
    return calls


@pytest.mark.slow
def test_warmup_records_are_predict_requests_for_every_signature(pushed):
    _, _, path = pushed
    signatures = sorted(read_manifest(path)["signatures"])
    defs = read_signature_defs(path)
    logs = _logs(path)
    assert {log.WhichOneof("log_type") for log in logs} == {"predict_log"}
    requests = [log.predict_log.request for log in logs]
    assert sorted(r.model_spec.signature_name for r in requests) == signatures
    assert {r.model_spec.name for r in requests} == {"voice"}
    for request in requests:
        inputs = defs[request.model_spec.signature_name].inputs
        assert sorted(request.inputs) == sorted(inputs), request.model_spec.signature_name
        for key, tensor in request.inputs.items():
            assert tensor.dtype == inputs[key].dtype, key
            declared = [d.size for d in inputs[key].tensor_shape.dim]
            shape = tf.make_ndarray(tensor).shape
            assert len(shape) == len(declared) and all(
                d < 0 or d == s for d, s in zip(declared, shape)), (key, shape, declared)


@pytest.mark.slow
def test_server_replays_every_warmup_request_with_the_models_answers(pushed, replayed):
    model, base, path = pushed
    manager = ModelManager([ModelConfig("voice", base / "voice")])
    manager.poll()
    assert manager.loaded_versions("voice") == [1]
    defs = read_signature_defs(path)
    requests = [log.predict_log.request for log in _logs(path)]
    assert [(c[0], c[1], c[2]) for c in replayed] == [
        ("voice", 1, r.model_spec.signature_name) for r in requests]
    reference = verify.keras_runner(model)
    for _, _, signature, feeds, outputs in replayed:
        assert sorted(outputs) == sorted(defs[signature].outputs), signature
        want = reference(signature, feeds)
        for key, value in want.items():
            if np.issubdtype(value.dtype, np.floating):
                np.testing.assert_allclose(outputs[key], value, atol=1e-5, rtol=1e-5,
                                           err_msg=f"{signature}/{key}")
            else:
                np.testing.assert_array_equal(outputs[key], value, err_msg=f"{signature}/{key}")
    # the warmed-up version answers a request of its own warm-up file
    step = next(r for r in requests if r.model_spec.signature_name == contract.STEP)
    feeds = {k: tf.make_ndarray(v) for k, v in step.inputs.items()}
    outputs, _ = manager.get("voice").predict(contract.STEP, feeds)
    assert outputs[contract.PARAMS].shape == (1, 16)


@pytest.mark.slow
def test_a_failing_warmup_request_keeps_the_version_out(pushed, tmp_path, replayed):
    """Version 2 with one warm-up request of the wrong dtype does not load (version 1 is
    still served under the `all` policy); without warm-up the same files load."""
    _, base, path = pushed
    root = tmp_path / "voice"
    shutil.copytree(path, root / "1")
    shutil.copytree(path, root / "2")
    logs = _logs(root / "2")
    bad = next(log for log in logs
               if log.predict_log.request.model_spec.signature_name == contract.STEP)
    x_prev = tf.make_ndarray(bad.predict_log.request.inputs[contract.X_PREV])
    bad.predict_log.request.inputs[contract.X_PREV].CopyFrom(
        tf.make_tensor_proto(x_prev.astype("float32")))
    _write(root / "2", logs)
    manager = ModelManager([ModelConfig("voice", root, policy="all")])
    manager.poll()
    assert manager.loaded_versions("voice") == [1]
    # version 2's replay stopped at the bad record: only the requests before it answered
    names = [log.predict_log.request.model_spec.signature_name for log in logs]
    assert [c[2] for c in replayed if c[1] == 2] == names[:names.index(contract.STEP)]
    unwarmed = ModelManager([ModelConfig("voice", root, policy="all")], enable_warmup=False)
    unwarmed.poll()
    assert unwarmed.loaded_versions("voice") == [1, 2]
