"""`keras-ar serve --enable_batching`: concurrent Predicts merged along the batch axis, each
client answered with exactly its own rows; a full queue answers UNAVAILABLE / 503."""

import re
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.generator import Generator
from serving.saved_model_backend import SavedModelBackend
from serving.tf_serving_backend import TFServingBackend
from tests.serving import rest_client
from tests.serving.conftest import ServerProcess

CLIENTS, STEPS = 32, 50
STATS = re.compile(r"Batching wavenet version 1 signature (\w+): (\d+) batches of (\d+) "
                   r"requests \((\d+) rows, (\d+) after padding\); largest batch (\d+)")


def serve(model_root, tmp_path, parameters, *extra):
    path = tmp_path / "batching.txt"
    path.write_text(parameters)
    return ServerProcess(["--model_name=wavenet", f"--model_base_path={model_root / 'wavenet'}",
                          "--enable_batching", f"--batching_parameters_file={path}",
                          "--grpc_max_threads=40", "--rest_api_num_threads=40", *extra],
                         tmp_path / "server.log")


def stats(log):
    return {m[1]: dict(zip(("batches", "requests", "rows", "padded", "largest"),
                           map(int, m.groups()[1:]))) for m in STATS.finditer(log)}


def client_case(i):
    """(protocol, chunk size): every 4th client speaks REST; odd ones stream sample_chunk
    rounds of 10 samples, even ones sample_step."""
    return ("http" if i % 4 == 3 else "grpc"), (10 if i % 2 else 1)


@pytest.mark.slow
def test_32_streaming_clients_get_their_solo_samples(model_root, tmp_path):
    reference = SavedModelBackend(model_root / "wavenet" / "1")
    solo = [Generator(reference, chunk_size=client_case(i)[1]).generate(STEPS, seed=i)["x"]
            for i in range(CLIENTS)]
    server = serve(model_root, tmp_path, "max_batch_size { value: 32 }\n"
                   "batch_timeout_micros { value: 1000 }\nnum_batch_threads { value: 1 }\n"
                   "allowed_batch_sizes: 4 allowed_batch_sizes: 16 allowed_batch_sizes: 32")
    urls = {"grpc": f"grpc://{server.grpc_target}/wavenet",
            "http": f"{server.rest}/v1/models/wavenet"}
    results, errors = [None] * CLIENTS, []
    barrier = threading.Barrier(CLIENTS)

    def client(i):
        try:
            protocol, chunk = client_case(i)
            backend = TFServingBackend(urls[protocol], manifest=model_root / "wavenet" / "1",
                                       retry_deadline_s=0)  # UNAVAILABLE fails the test
            barrier.wait(timeout=120)
            results[i] = Generator(backend, chunk_size=chunk).generate(STEPS, seed=i)["x"]
            backend.close()
        except Exception as error:  # reported below
            errors.append((i, error))
            barrier.abort()

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
    finally:
        server.stop()
    assert not errors, errors[:3]
    for i in range(CLIENTS):
        np.testing.assert_array_equal(results[i], solo[i], err_msg=f"client {i}")
    assert len({r.tobytes() for r in results}) == CLIENTS  # the seeds differ
    counts = stats(server.log_path.read_text())  # the counts are logged at the stop
    step, chunk = counts["sample_step"], counts["sample_chunk"]
    assert step["requests"] == (CLIENTS // 2) * STEPS
    assert chunk["requests"] == (CLIENTS // 2) * (STEPS // 10)
    assert step["largest"] > 1 and step["batches"] < step["requests"], step
    assert chunk["largest"] > 1, chunk
    assert step["padded"] > step["rows"]  # padded up to 4, 16 or 32 rows
    assert "generate" not in counts


def _chunk_request(reference, steps, rows=1):
    init = reference.run("init_state", {"batch_template": np.zeros(rows, np.int32)})
    feeds = {"state_" + k[len("new_state_"):]: v for k, v in init.items()}
    feeds.update(x_prev=np.full(rows, 16, np.int32),
                 noise=np.full((rows, steps, 1), 0.5, np.float32),
                 prompt=np.zeros((rows, 1), np.int32), prompt_length=np.zeros(rows, np.int32),
                 temperature=np.ones(rows, np.float32), top_k=np.zeros(rows, np.int32),
                 top_p=np.ones(rows, np.float32))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "wavenet"
    request.model_spec.signature_name = "sample_chunk"
    for key, value in feeds.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request, feeds


@pytest.mark.slow
def test_full_queue_unavailable_and_oversized_requests_refused(model_root, tmp_path):
    """One batch thread, busy with a long chunk; one batch of a 1-row queue waiting: the
    next request of that queue is refused at once (gRPC UNAVAILABLE, REST 503)."""
    reference = SavedModelBackend(model_root / "wavenet" / "1")
    server = serve(model_root, tmp_path, "max_batch_size { value: 1 }\n"
                   "max_enqueued_batches { value: 1 }\nnum_batch_threads { value: 1 }")
    channel = grpc.insecure_channel(server.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        two_rows, _ = _chunk_request(reference, 3, rows=2)
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(two_rows, timeout=60)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Task size 2 is larger than maximum input batch size 1" in error.value.details()

        slow, _ = _chunk_request(reference, 12000)
        small, feeds = _chunk_request(reference, 3)
        answers = {}
        threads = [threading.Thread(target=lambda k=k, r=r: answers.update(
            {k: stub.Predict(r, timeout=120)})) for k, r in (("slow", slow), ("queued", small))]
        threads[0].start()
        time.sleep(1.5)  # the slow chunk holds the only batch thread
        threads[1].start()
        time.sleep(0.5)  # ... and the small one is the queue's one waiting batch
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(small, timeout=60)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "max_enqueued_batches = 1" in error.value.details()
        status, body = rest_client.call(
            f"{server.rest}/v1/models/wavenet:predict",
            {"signature_name": "sample_chunk", "inputs": {k: v.tolist()
                                                          for k, v in feeds.items()}})
        assert status == 503 and "is full" in body["error"], body
        for thread in threads:
            thread.join(timeout=180)
        assert sorted(answers) == ["queued", "slow"]  # both ran to the end
        assert tf.make_ndarray(answers["slow"].outputs["x"]).shape == (1, 12000)
        expected = reference.run("sample_chunk", feeds)["x"]
        np.testing.assert_array_equal(tf.make_ndarray(answers["queued"].outputs["x"]),
                                      expected)
    finally:
        channel.close()
        server.stop()


def test_scheduler_merges_pads_and_splits_in_process(model_root):
    """The scheduler on a loaded Servable: 12 concurrent sample_chunk requests of 1 or 2
    rows are merged (padded up to 4 or 8 rows) and each gets its solo samples; whole-loop
    and shape-mismatched requests are not merged."""
    from serving.batch_scheduler import BatchScheduler
    from serving.batching_parameters import BatchingParameters
    from serving.servable import Servable

    path = model_root / "wavenet" / "1"
    batcher = BatchScheduler(BatchingParameters(max_batch_size=8, batch_timeout_micros=20000,
                                                num_batch_threads=1,
                                                allowed_batch_sizes=[4, 8]))
    servable, reference = Servable("wavenet", 1, path, batcher=batcher), SavedModelBackend(path)
    assert servable.batched == ["init_state", "log_prob", "prefill", "sample_chunk",
                                "sample_step", "step"]
    rng = np.random.default_rng(0)
    feeds = []
    for i in range(12):
        _, feed = _chunk_request(reference, 5 if i < 10 else 6, rows=1 + i % 2)
        feed["noise"] = rng.random(feed["noise"].shape, dtype=np.float32)
        feeds.append(feed)
    solo = [reference.run("sample_chunk", feed) for feed in feeds]
    answers = [None] * len(feeds)

    def call(i):
        answers[i] = servable.predict("sample_chunk", feeds[i])[0]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(feeds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for answer, expected in zip(answers, solo):
        assert sorted(answer) == sorted(expected)
        for key in ("x", "lengths", "stop", "new_state_index"):
            np.testing.assert_array_equal(answer[key], expected[key], err_msg=key)
        for key in expected:  # float state: the same up to summation order across sizes
            np.testing.assert_allclose(answer[key], expected[key], rtol=0, atol=1e-6)
    servable.predict("generate", {k: v for k, v in feeds[0].items()
                                  if k in servable.inputs["generate"]})
    (entry,) = batcher.stats()
    assert entry["signature"] == "sample_chunk" and entry["requests"] == 12
    assert entry["rows"] == 18 and entry["largest_batch"] > 1
    assert entry["padded_rows"] > entry["rows"]
    batcher.close()


def test_batchable_is_decided_by_shapes():
    from serving.servable import TensorInfo, batchable

    def infos(**shapes):
        return {k: TensorInfo(k, np.float32, s) for k, s in shapes.items()}

    assert batchable("step", infos(x=[None], s=[None, 4]), infos(y=[None, 3]))
    assert not batchable("step", infos(x=[None], t=[]), infos(y=[None]))  # rank-0 input
    assert not batchable("step", infos(x=[None]), infos(y=[]))  # rank-0 output
    assert not batchable("step", infos(x=[1, 4]), infos(y=[1]))  # a fixed batch
    assert not batchable("step", infos(x=None), infos(y=[None]))  # unknown rank
    assert not batchable("generate", infos(noise=[None, None, 1]), infos(x=[None, None]))
