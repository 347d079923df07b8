"""Hostile requests over REST and gRPC: each is refused with a status and a message naming
the tensor, the value and the limit, and the server keeps serving (`hostile_server`, shared
with test_rest_connections.py: see conftest.py).

The server runs under RLIMIT_AS = 4 GiB: a probe that allocated before checking (a [1, 2^24]
tensor from one value, a batch of 20,000 states) would fail there instead of being refused.
"""

import json
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving.conftest import MAX_BATCH, MAX_ELEMENTS, MAX_POSITIONS, MAX_STEPS
from tests.serving.rest_client import call

INT32, FLOAT = 3, 1  # DataType enums


@pytest.fixture(scope="module")
def stub(hostile_server):
    channel = grpc.insecure_channel(hostile_server.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


# ----------------------------------------------------------------- helpers
def rest_predict(server, signature, inputs, model="wavenet"):
    return call(f"{server.rest}/v1/models/{model}:predict",
                {"signature_name": signature, "inputs": inputs})


def grpc_request(signature, model="wavenet"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    return request


def grpc_predict(stub, signature, feeds, model="wavenet"):
    import tensorflow as tf

    request = grpc_request(signature, model)
    for key, value in feeds.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return stub.Predict(request, timeout=60)


def grpc_refused(stub, request):
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request, timeout=60)
    return caught.value.code(), caught.value.details()


def assert_still_serving(server, stub):
    status, body = rest_predict(server, "init_state", {"batch_template": [0, 0]})
    assert status == 200, body
    response = grpc_predict(stub, "init_state", {"batch_template": np.zeros(2, np.int32)})
    assert "new_state_index" in response.outputs


def state(batch, model_root_state=((1, 8), (2, 8), (4, 8))):
    feeds = {f"state_buffer_{i}": np.zeros((batch,) + shape, np.float32)
             for i, shape in enumerate(model_root_state)}
    feeds["state_index"] = np.zeros(batch, np.int32)
    return feeds


def sample_step_feeds(batch=2, **overrides):
    feeds = {"x_prev": np.zeros(batch, np.int32), **state(batch),
             "noise": np.full((batch, 1), 0.5, np.float32),
             "temperature": np.ones(batch, np.float32), "top_k": np.zeros(batch, np.int32),
             "top_p": np.ones(batch, np.float32)}
    feeds.update(overrides)
    return feeds


def both(server, stub, signature, feeds, model="wavenet"):
    """(REST status, REST error) and (gRPC code, gRPC details) for `feeds`."""
    status, body = rest_predict(server, signature, {k: np.asarray(v).tolist()
                                                    for k, v in feeds.items()}, model)
    with pytest.raises(grpc.RpcError) as caught:
        grpc_predict(stub, signature, feeds, model)
    return (status, body.get("error", "")), (caught.value.code(), caught.value.details())


# ----------------------------------------------------------------- 1. sizes
def test_long_log_prob_is_refused_before_it_is_built(hostile_server, stub):
    length = 300_000
    status, body = call(f"{hostile_server.rest}/v1/models/wavenet:predict",
                        raw=json.dumps({"signature_name": "log_prob",
                                        "inputs": {"x": [[0] * length], "lengths": [length]}
                                        }).encode())
    assert status == 413, body
    assert "`x`" in body["error"] and str(length) in body["error"]
    assert str(MAX_ELEMENTS) in body["error"] and "--max_tensor_elements" in body["error"]
    request = grpc_request("log_prob")
    request.inputs["x"].CopyFrom(_declared(INT32, [1, length], content=bytes(4 * length)))
    request.inputs["lengths"].CopyFrom(_declared(INT32, [1], int_val=[length]))
    code, details = grpc_refused(stub, request)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "`x`" in details
    assert_still_serving(hostile_server, stub)


def test_time_axis_is_limited(hostile_server, stub):
    x = np.zeros((1, MAX_POSITIONS + 1), np.int32)
    (status, error), (code, details) = both(hostile_server, stub, "log_prob",
                                            {"x": x, "lengths": np.ones(1, np.int32)})
    assert status == 413 and code == grpc.StatusCode.RESOURCE_EXHAUSTED
    for text in (error, details):
        assert "`x`" in text and str(MAX_POSITIONS + 1) in text and str(MAX_POSITIONS) in text


def _declared(dtype, shape, content=None, **values):
    from tensorflow.core.framework import tensor_pb2

    proto = tensor_pb2.TensorProto(dtype=dtype, **values)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    if content is not None:
        proto.tensor_content = content
    return proto


def test_one_value_declaring_a_huge_shape_is_refused(hostile_server, stub):
    request = grpc_request("log_prob")  # 79 bytes on the wire; [1, 2^24] if filled
    request.inputs["x"].CopyFrom(_declared(INT32, [1, 1 << 24], int_val=[1]))
    request.inputs["lengths"].CopyFrom(_declared(INT32, [1], int_val=[1]))
    code, details = grpc_refused(stub, request)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "`x`" in details and str(1 << 24) in details and str(MAX_ELEMENTS) in details
    assert_still_serving(hostile_server, stub)


@pytest.mark.parametrize("values", [dict(int_val=[1]), dict(content=bytes(8))])
def test_values_must_fill_the_declared_shape(hostile_server, stub, values):
    request = grpc_request("log_prob")
    request.inputs["x"].CopyFrom(_declared(INT32, [1, 100], **values))
    request.inputs["lengths"].CopyFrom(_declared(INT32, [1], int_val=[1]))
    code, details = grpc_refused(stub, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "`x`" in details and "[1, 100]" in details and "exactly one value" in details
    assert_still_serving(hostile_server, stub)


def test_huge_batch_template_is_refused_up_front(hostile_server, stub):
    (status, error), (code, details) = both(hostile_server, stub, "init_state",
                                            {"batch_template": np.zeros(20_000, np.int32)})
    assert status == 413 and code == grpc.StatusCode.RESOURCE_EXHAUSTED
    for text in (error, details):
        assert "`batch_template`" in text and "20000" in text and str(MAX_BATCH) in text
    assert_still_serving(hostile_server, stub)


def test_outputs_over_the_limit_are_refused_up_front(hostile_server, stub):
    batch, length = 50, 300  # x: 15,000 elements; params [50, 300, 16]: 240,000
    feeds = {"x": np.zeros((batch, length), np.int32), **state(batch)}
    (status, error), (code, details) = both(hostile_server, stub, "prefill", feeds)
    assert status == 413 and code == grpc.StatusCode.RESOURCE_EXHAUSTED
    for text in (error, details):
        assert "Output `params`" in text and "240000" in text and str(MAX_ELEMENTS) in text
    assert_still_serving(hostile_server, stub)


# ----------------------------------------------------------------- 2. values
VALUE_PROBES = {
    "top_p zero": (dict(top_p=np.zeros(2, np.float32)), "`top_p` holds 0.0", "(0, 1]"),
    "top_p above one": (dict(top_p=np.full(2, 1.5, np.float32)), "`top_p` holds 1.5",
                        "(0, 1]"),
    "negative top_k": (dict(top_k=np.full(2, -1, np.int32)), "`top_k` holds -1", "[0, inf]"),
    "negative temperature": (dict(temperature=np.full(2, -1, np.float32)),
                             "`temperature` holds -1.0", "[0, inf]"),
    "noise of one": (dict(noise=np.ones((2, 1), np.float32)), "`noise` holds 1.0", "[0, 1)"),
    "NaN noise": (dict(noise=np.full((2, 1), np.nan, np.float32)), "`noise` holds nan",
                  "[0, 1)"),
    "batch-1 temperature": (dict(temperature=np.ones(1, np.float32)), "`temperature` [1]",
                            "same batch"),
    "state_index of batch 2 beside buffers of batch 1": (
        {**state(1), "state_index": np.zeros(2, np.int32), "x_prev": np.zeros(2, np.int32)},
        "`state_index` [2]", "`state_buffer_0` [1, 1, 8]"),
}


@pytest.mark.parametrize("probe", sorted(VALUE_PROBES))
def test_values_outside_the_protocol_are_refused(hostile_server, stub, probe):
    overrides, *expected = VALUE_PROBES[probe]
    (status, error), (code, details) = both(hostile_server, stub, "sample_step",
                                            sample_step_feeds(**overrides))
    assert status == 400 and code == grpc.StatusCode.INVALID_ARGUMENT
    for text in (error, details):
        assert all(part in text for part in expected), text
    assert_still_serving(hostile_server, stub)


@pytest.mark.parametrize("speaker", [-1, 3])
def test_class_ids_outside_the_model_classes_are_refused(hostile_server, stub, speaker):
    feeds = {"global_condition": np.array([0, speaker], np.int32)}
    (status, error), (code, details) = both(hostile_server, stub, "init_state", feeds,
                                            model="speaker")
    assert status == 400 and code == grpc.StatusCode.INVALID_ARGUMENT
    for text in (error, details):
        assert f"`global_condition` holds {speaker}" in text and "[0, 3)" in text
    status, body = rest_predict(hostile_server, "init_state", {"global_condition": [0, 2]},
                                model="speaker")
    assert status == 200, body


def test_ids_past_the_models_alphabet_are_refused(hostile_server, stub):
    """The tiny WaveNet reads ids 0..15 and its start id 16; 17 or -1 would index past its
    embedding."""
    state = grpc_predict(stub, "init_state", {"batch_template": np.zeros(1, np.int32)})
    import tensorflow as tf

    feeds = {k.replace("new_", ""): tf.make_ndarray(v) for k, v in state.outputs.items()}
    for bad in (17, -1):
        feeds["x_prev"] = np.array([bad], np.int32)
        (status, error), (code, details) = both(hostile_server, stub, "step", feeds)
        assert status == 400 and code == grpc.StatusCode.INVALID_ARGUMENT
        for text in (error, details):
            assert f"`x_prev` holds {bad}" in text and "ids of this model in [0, 16]" in text
    feeds["x_prev"] = np.array([16], np.int32)  # the start id
    assert grpc_predict(stub, "step", feeds).outputs["params"].tensor_shape.dim[0].size == 1


def test_prompt_length_beyond_the_prompt_is_refused(hostile_server, stub):
    feeds = {"seed": np.zeros(1, np.int32), "num_steps": np.full(1, 6, np.int32),
             "prompt": np.zeros((1, 6), np.int32), "prompt_length": np.full(1, 7, np.int32),
             "temperature": np.ones(1, np.float32), "top_k": np.zeros(1, np.int32),
             "top_p": np.ones(1, np.float32)}
    (status, error), (code, details) = both(hostile_server, stub, "generate_seeded", feeds)
    assert status == 400 and code == grpc.StatusCode.INVALID_ARGUMENT
    for text in (error, details):
        assert "`prompt_length` holds 7" in text and "[0, 6]" in text


def test_json_integers_outside_int32_are_refused(hostile_server, stub):
    status, body = rest_predict(hostile_server, "init_state",
                                {"batch_template": [0, 2 ** 32 + 5]})
    assert status == 400, body
    assert "`batch_template`" in body["error"] and str(2 ** 32 + 5) in body["error"]
    assert "int32" in body["error"]
    assert_still_serving(hostile_server, stub)


def test_deeply_nested_json_is_refused(hostile_server, stub):
    raw = b'{"inputs": {"batch_template": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    status, body = call(f"{hostile_server.rest}/v1/models/wavenet:predict", raw=raw)
    assert status == 400 and "deeply" in body["error"], body
    raw = (b'{"signature_name": "init_state", "inputs": {"batch_template": '
           + b"[" * 40 + b"0" + b"]" * 40 + b"}}")
    status, body = call(f"{hostile_server.rest}/v1/models/wavenet:predict", raw=raw)
    assert status == 400 and "`batch_template`" in body["error"], body
    assert_still_serving(hostile_server, stub)


@pytest.mark.parametrize("version", ["%C2%B2", "%D9%A1", "1e3", "-1"])
def test_versions_are_ascii_digits(hostile_server, stub, version):
    status, body = call(f"{hostile_server.rest}/v1/models/wavenet/versions/{version}")
    assert status in (400, 404), body
    assert "error" in body
    assert_still_serving(hostile_server, stub)


# ----------------------------------------------------------------- 3. work
def test_num_steps_is_capped(hostile_server, stub):
    feeds = {"seed": np.zeros(1, np.int32), "num_steps": np.full(1, 2_000_000, np.int32),
             "prompt": np.zeros((1, 1), np.int32), "prompt_length": np.zeros(1, np.int32),
             "temperature": np.ones(1, np.float32), "top_k": np.zeros(1, np.int32),
             "top_p": np.ones(1, np.float32)}
    started = time.monotonic()
    (status, error), (code, details) = both(hostile_server, stub, "generate_seeded", feeds)
    assert time.monotonic() - started < 10
    assert status == 413 and code == grpc.StatusCode.RESOURCE_EXHAUSTED
    for text in (error, details):
        assert "2000000" in text and str(MAX_STEPS) in text and "--max_num_steps" in text
    assert_still_serving(hostile_server, stub)


def test_output_filter_cache_stays_bounded(model_root):
    from serving import signature_session

    session = signature_session.SignatureSession(model_root / "wavenet" / "1",
                                                 max_callables=3)
    assert signature_session.MAX_CALLABLES == 32  # the server's bound
    feeds = {"batch_template": np.zeros(2, np.int32)}
    names = sorted(session.specs["init_state"]["outputs"])
    subsets = [names[:1], names[1:2], names[2:3], names[3:], names[:2], names[1:3], names[:3],
               names[:1]]
    for subset in subsets:
        assert sorted(session.run("init_state", feeds, subset)) == subset
        assert session.cached_callables() <= 3
    session.close()


@pytest.mark.parametrize("options, message", [
    (dict(top_p=0.0), "`top_p` holds 0.0"),
    (dict(top_k=-2), "`top_k` holds -2"),
    (dict(temperature=-0.5), "`temperature` holds -0.5"),
    (dict(temperature=[1.0]), r"`temperature` has shape \[1\]"),
])
def test_generator_checks_controls_on_the_host(model_root, options, message):
    from serving.generator import Generator
    from serving.saved_model_backend import SavedModelBackend

    generator = Generator(SavedModelBackend(model_root / "wavenet" / "1"))
    with pytest.raises(ValueError, match=message):
        generator.generate(4, batch_size=2, **options)
