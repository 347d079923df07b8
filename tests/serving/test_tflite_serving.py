"""`keras-ar serve --prefer_tflite_model=true`: a repository version written with
`model.tflite` (`export.repository.write_version(tflite=True)`) is run on TFLite behind the
same gRPC and REST APIs; streaming chunks give the SavedModel's samples."""

import numpy as np
import pytest
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

from export import repository
from keras_ar import contract
from serving.generator import Generator
from serving.saved_model_backend import SavedModelBackend
from serving.tf_serving_backend import TFServingBackend
from tests.serving import artifacts
from tests.serving.conftest import ServerProcess

#: the streaming loop's signatures and `generate_seeded` (SavedModel only); no `generate`:
#: its in-graph loop is the slowest to convert and no test here runs it
SIGNATURES = (contract.INIT_STATE, contract.PREFILL, contract.SAMPLE_STEP,
              contract.SAMPLE_CHUNK, contract.GENERATE_SEEDED)


@pytest.fixture(scope="module")
def lite_version(tmp_path_factory):
    base = tmp_path_factory.mktemp("lite_repo")
    model = artifacts.tiny_wavenet(seed=3)
    path = repository.write_version(model, base, "wavenet", tflite=True,
                                    signatures=SIGNATURES)
    return path


@pytest.fixture(scope="module")
def lite_server(lite_version, tmp_path_factory):
    work = tmp_path_factory.mktemp("lite_server")
    proc = ServerProcess(["--model_name=wavenet", f"--model_base_path={lite_version.parent}",
                          "--prefer_tflite_model=true"], work / "server.log")
    yield proc
    proc.stop()


def test_version_holds_the_tflite_file_and_warmup(lite_version):
    assert (lite_version / "model.tflite").is_file()
    assert (lite_version / "saved_model.pb").is_file()


def test_served_on_tflite_with_tflite_signatures(lite_server):
    import grpc

    assert "tflite runtime" in lite_server.log()
    channel = grpc.insecure_channel(lite_server.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "wavenet"
    response = stub.GetModelMetadata(request, timeout=60)
    defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(defs)
    names = set(defs.signature_def)
    assert set(SIGNATURES) - {contract.GENERATE_SEEDED} <= names
    assert contract.GENERATE_SEEDED not in names  # SavedModel only: not in the TFLite file
    noise = defs.signature_def[contract.SAMPLE_CHUNK].inputs[contract.NOISE]
    assert [d.size for d in noise.tensor_shape.dim] == [-1, -1, 1]
    channel.close()


@pytest.mark.parametrize("url", ["grpc", "rest"])
def test_streaming_over_the_tflite_server_matches_the_savedmodel(lite_server, lite_version,
                                                                 url):
    address = (f"grpc://{lite_server.grpc_target}/wavenet" if url == "grpc"
               else f"{lite_server.rest}/v1/models/wavenet")
    reference = Generator(SavedModelBackend(lite_version), chunk_size=1).generate(
        30, batch_size=2, seed=5)
    remote = Generator(TFServingBackend(address, manifest=lite_version), chunk_size=8)
    out = remote.generate(30, batch_size=2, seed=5)
    np.testing.assert_array_equal(out["x"], reference["x"])
    if url == "grpc":  # the server's own check, past the client's: INVALID_ARGUMENT
        _assert_server_refuses_an_empty_chunk(lite_server, remote, lite_version)


def _assert_server_refuses_an_empty_chunk(server, generator, version):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    run = generator.start(4, batch_size=1, seed=0)
    feeds = {contract.X_PREV: run.x_prev, contract.NOISE: run.noise[:, :0], **run.controls,
             **{contract.state_input_name(k): v for k, v in run.state.items()},
             contract.PROMPT: np.zeros((1, 1), np.int32),
             contract.PROMPT_LENGTH: np.zeros(1, np.int32)}
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "wavenet"
    request.model_spec.signature_name = contract.SAMPLE_CHUNK
    for key, value in feeds.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    channel = grpc.insecure_channel(server.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=60)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "K = 0" in error.value.details()
    channel.close()
