"""Bad `sample_chunk` feeds get a clear error naming the tensor, its shape and the expected
one, on every backend and over the server (gRPC INVALID_ARGUMENT, HTTP 400), and the server
keeps serving."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from keras_ar import contract
from serving.onnx_backend import OnnxBackend
from serving.saved_model_backend import SavedModelBackend
from serving.tflite_backend import TFLiteBackend
from tests.serving import artifacts
from tests.serving import feeds as feeds_lib
from tests.serving.rest_client import call


@pytest.fixture(scope="module")
def good(model_root):
    reference = SavedModelBackend(model_root / "wavenet" / "1")
    return feeds_lib.example_feeds(reference)[contract.SAMPLE_CHUNK]


def _bad_cases(good):
    other = artifacts.tiny_wavenet(seed=1, dilations=[1, 2], residual_channels=4)
    foreign = {contract.state_input_name(k): np.asarray(v)
               for k, v in other.init_state(2).items()}
    state_key = next(k for k in good if k.startswith("state_buffer"))
    return {
        "K = 0": (dict(good, noise=good["noise"][:, :0]), r"K = 0"),
        "noise batch": (dict(good, noise=good["noise"][:1]), r"`x_prev` \[2\] has batch 2"),
        "prompt longer than K": (dict(good, prompt=np.zeros((2, 9), np.int32)),
                                 r"`prompt` \[2, 9\] covers 9 positions; at most K = 7"),
        "state of another model": (dict(good, **{state_key: foreign[state_key]}),
                                   rf"`{state_key}`"),
    }


CASES = ["K = 0", "noise batch", "prompt longer than K", "state of another model"]


@pytest.fixture(scope="module")
def local_backends(wavenet_exports, model_root):
    made = {"savedmodel": SavedModelBackend(model_root / "wavenet" / "1"),
            "tflite": TFLiteBackend(wavenet_exports["tflite"]),
            "onnx": OnnxBackend(wavenet_exports["onnx"])}
    yield made
    for backend in made.values():
        backend.close()


@pytest.mark.parametrize("kind", ["savedmodel", "tflite", "onnx"])
@pytest.mark.parametrize("case", CASES)
def test_backends_refuse_bad_chunks(local_backends, good, kind, case):
    backend = local_backends[kind]
    feeds, message = _bad_cases(good)[case]
    with pytest.raises(ValueError, match=message):
        backend.run(contract.SAMPLE_CHUNK, feeds)
    out = backend.run(contract.SAMPLE_CHUNK, good)  # still serves
    assert out[contract.X].shape == (2, 7)


@pytest.mark.parametrize("case", CASES)
def test_server_refuses_bad_chunks_and_keeps_serving(server, grpc_channel, good, case):
    feeds, message = _bad_cases(good)[case]
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc_channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "wavenet"
    request.model_spec.signature_name = contract.SAMPLE_CHUNK
    for key, value in feeds.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=60)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert case == "state of another model" or (
        __import__("re").search(message, error.value.details())), error.value.details()
    status, body = call(f"{server.rest}/v1/models/wavenet:predict",
                        {"signature_name": contract.SAMPLE_CHUNK,
                         "inputs": {k: v.tolist() for k, v in feeds.items()}})
    assert status == 400, body
    status, body = call(f"{server.rest}/v1/models/wavenet:predict",
                        {"signature_name": contract.SAMPLE_CHUNK,
                         "inputs": {k: v.tolist() for k, v in good.items()}})
    assert status == 200 and len(body["outputs"]["x"]) == 2
