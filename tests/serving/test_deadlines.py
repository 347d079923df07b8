"""A whole-sequence `generate_seeded` over gRPC stops at the client's deadline: the server
answers DEADLINE_EXCEEDED and uses no CPU after it (the graph loop is cancelled, not left
running), and the next request is answered at once."""

import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving import artifacts
from tests.serving.conftest import ServerProcess

STEPS = 400_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("deadline")
    model = artifacts.tiny_wavenet(seed=3, dilations=[1, 2, 4, 8], residual_channels=16,
                                   skip_channels=16)
    artifacts.export_saved_model(model, work / "wavenet" / "1",
                                 signatures=("generate_seeded",))  # the one sent here
    proc = ServerProcess(["--model_name=wavenet", f"--model_base_path={work / 'wavenet'}",
                          f"--max_num_steps={STEPS}", f"--max_sequence_length={STEPS}",
                          f"--max_tensor_elements={4 * STEPS}"], work / "server.log")
    yield proc
    proc.stop()


def _request(num_steps):
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "wavenet", "generate_seeded"
    feeds = {"seed": np.zeros(1, np.int32), "num_steps": np.full(1, num_steps, np.int32),
             "prompt": np.zeros((1, 1), np.int32), "prompt_length": np.zeros(1, np.int32),
             "temperature": np.ones(1, np.float32), "top_k": np.zeros(1, np.int32),
             "top_p": np.ones(1, np.float32)}
    for key, value in feeds.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def _cpu_seconds(pid):
    """User + system CPU seconds of process `pid` (all its threads)."""
    import os

    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_generate_is_cancelled_at_the_clients_deadline(server):
    channel = grpc.insecure_channel(server.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    start = time.perf_counter()
    small = stub.Predict(_request(2000), timeout=60)  # the rate: steps per second
    rate = 2000 / (time.perf_counter() - start)
    assert STEPS / rate > 8, f"the long request must take > 8 s uncancelled ({rate:.0f}/s)"
    start = time.perf_counter()
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(_request(STEPS), timeout=1.0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(1.0)  # the server notices the deadline ~when the client does
    busy = _cpu_seconds(server.process.pid)
    time.sleep(2.0)
    assert _cpu_seconds(server.process.pid) - busy < 0.5  # idle: the loop was cancelled
    start = time.perf_counter()
    again = stub.Predict(_request(2000), timeout=60)
    assert time.perf_counter() - start < 4.0 * 2000 / rate + 1.0  # the loop was not running
    np.testing.assert_array_equal(np.asarray(again.outputs["x"].int_val),
                                  np.asarray(small.outputs["x"].int_val))
    channel.close()
