"""gRPC with the official tensorflow-serving-api stubs."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.saved_model_backend import SavedModelBackend
from tests.serving import feeds as feeds_lib
from tests.serving.test_server_rest import SIGNATURES


@pytest.fixture(scope="module")
def reference(model_root):
    return SavedModelBackend(model_root / "wavenet" / "1")


@pytest.fixture(scope="module")
def feeds(reference):
    return feeds_lib.example_feeds(reference)


@pytest.fixture(scope="module")
def stub(grpc_channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(grpc_channel)


def predict(stub, model, signature, feed, version=None, label=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key, value in feed.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return stub.Predict(request, timeout=60)


@pytest.mark.parametrize("signature", SIGNATURES)
def test_predict_every_signature(stub, reference, feeds, signature):
    response = predict(stub, "wavenet", signature, feeds[signature])
    outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    feeds_lib.assert_outputs_equal(outputs, reference.run(signature, feeds[signature]))
    assert response.model_spec.name == "wavenet"
    assert response.model_spec.signature_name == signature
    assert response.model_spec.version.value >= 1


def test_empty_signature_name_is_serving_default(stub, reference, feeds):
    response = predict(stub, "wavenet_all", "", feeds["serving_default"], label="stable")
    assert response.model_spec.signature_name == "serving_default"
    assert response.model_spec.version.value == 1
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["x"]),
                                  reference.run("serving_default",
                                                feeds["serving_default"])["x"])


def test_metadata_packs_signature_def_map(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "wavenet"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=30)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    assert set(SIGNATURES) <= set(signature_map.signature_def)
    step = signature_map.signature_def["sample_step"]
    assert step.inputs["x_prev"].dtype == tf.int32.as_datatype_enum
    assert "new_state_index" in step.outputs


def test_model_status(grpc_channel):
    stub = model_service_pb2_grpc.ModelServiceStub(grpc_channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "other"
    response = stub.GetModelStatus(request, timeout=30)
    [status] = response.model_version_status
    assert status.version == 1 and status.state == 30  # AVAILABLE
    request.model_spec.name = "missing"
    with pytest.raises(grpc.RpcError) as error:
        stub.GetModelStatus(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_other_methods_are_unimplemented(stub):
    with pytest.raises(grpc.RpcError) as error:
        stub.Regress(regression_pb2.RegressionRequest(), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _code(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details()


def test_errors_and_the_server_keeps_serving(stub, feeds, model_root):
    step = feeds["step"]
    code, _ = _code(lambda: predict(stub, "nope", "step", step))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = _code(lambda: predict(stub, "wavenet", "step", step, version=42))
    assert code == grpc.StatusCode.NOT_FOUND
    code, text = _code(lambda: predict(stub, "wavenet", "nope", step))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "nope" in text
    wrong_dtype = dict(step, x_prev=step["x_prev"].astype(np.float32))
    code, text = _code(lambda: predict(stub, "wavenet", "step", wrong_dtype))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "int32" in text
    wrong_shape = dict(step, x_prev=step["x_prev"][:, None])
    code, text = _code(lambda: predict(stub, "wavenet", "step", wrong_shape))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "shape" in text
    other = SavedModelBackend(model_root / "other" / "1").run(
        "init_state", {"batch_template": np.zeros(2, np.int32)})
    foreign = {"x_prev": step["x_prev"], **{"state_" + k[10:]: v for k, v in other.items()}}
    code, text = _code(lambda: predict(stub, "wavenet", "step", foreign))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "state_" in text
    big = {"x": np.zeros((1, 1 << 20), np.int32)}  # 4 MiB > --max_request_bytes
    code, _ = _code(lambda: predict(stub, "wavenet", "log_prob", big))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert predict(stub, "wavenet", "step", step).outputs["params"].dtype == 1


def test_malformed_tensor_proto_and_metadata_request(stub, feeds):
    step = feeds["step"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "wavenet"
    request.model_spec.signature_name = "step"
    for key, value in step.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    request.inputs["x_prev"].tensor_shape.dim[0].size += 1  # content no longer fills it
    code, text = _code(lambda: stub.Predict(request, timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "x_prev" in text
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = "wavenet"
    code, text = _code(lambda: stub.GetModelMetadata(metadata, timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "signature_def" in text
