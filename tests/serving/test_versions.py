"""Version policies, polling for new versions and labels (warm-up: test_warmup.py)."""

import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.serving.conftest import POLL_S, publish_version
from tests.serving.rest_client import call


def _versions(channel, name):
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    return sorted(s.version for s in stub.GetModelStatus(request, timeout=30)
                  .model_version_status)


def _init_state(channel, name, version):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = "init_state"
    request.model_spec.version.value = version
    request.inputs["batch_template"].CopyFrom(tf.make_tensor_proto(np.zeros(1, np.int32)))
    return stub.Predict(request, timeout=30)


def test_new_version_is_picked_up_and_all_policy_keeps_version_1(server, grpc_channel,
                                                                 model_root):
    assert _versions(grpc_channel, "wavenet") == [1]
    publish_version(model_root / "wavenet", 1, 2)
    start = time.monotonic()
    while (_versions(grpc_channel, "wavenet") != [2]
           or _versions(grpc_channel, "wavenet_all") != [1, 2]):
        assert time.monotonic() - start < POLL_S + 30, server.log()
        time.sleep(0.1)
    picked_up = time.monotonic() - start
    # latest policy: only the newest version is served
    with pytest.raises(grpc.RpcError) as error:
        _init_state(grpc_channel, "wavenet", 1)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert _init_state(grpc_channel, "wavenet", 2).model_spec.version.value == 2
    # all policy: version 1 still answers, over gRPC and REST
    assert _init_state(grpc_channel, "wavenet_all", 1).model_spec.version.value == 1
    status, body = call(f"{server.rest}/v1/models/wavenet_all/versions/1:predict",
                        {"signature_name": "init_state", "instances": [0]})
    assert status == 200 and len(body["predictions"]) == 1
    print(f"version 2 picked up after {picked_up:.2f} s (poll {POLL_S} s + load)")
