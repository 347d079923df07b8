"""The REST API as TF Serving documents it, driven with plain urllib requests."""

import base64
import json

import numpy as np
import pytest

from serving.saved_model_backend import SavedModelBackend
from tests.serving import feeds as feeds_lib
from tests.serving.rest_client import call

SIGNATURES = ["init_state", "prefill", "step", "sample_step", "sample_chunk", "log_prob",
              "generate", "generate_seeded", "serving_default"]


@pytest.fixture(scope="module")
def reference(model_root):
    return SavedModelBackend(model_root / "wavenet" / "1")


@pytest.fixture(scope="module")
def feeds(reference):
    return feeds_lib.example_feeds(reference)


def test_model_status(server):
    status, body = call(f"{server.rest}/v1/models/wavenet")
    assert status == 200
    [entry] = body["model_version_status"][-1:]
    assert entry["state"] == "AVAILABLE"
    assert entry["status"] == {"error_code": "OK", "error_message": ""}
    status, body = call(f"{server.rest}/v1/models/wavenet_all/versions/1")
    assert status == 200 and body["model_version_status"][0]["version"] == "1"
    status, body = call(f"{server.rest}/v1/models/wavenet_all/labels/stable")
    assert status == 200 and body["model_version_status"][0]["version"] == "1"


def test_metadata_has_every_signature_with_proto_field_names(server):
    status, body = call(f"{server.rest}/v1/models/wavenet/metadata")
    assert status == 200
    assert body["model_spec"]["name"] == "wavenet"
    defs = body["metadata"]["signature_def"]["signature_def"]
    assert set(SIGNATURES) <= set(defs)
    step = defs["sample_step"]
    assert step["method_name"] == "tensorflow/serving/predict"
    assert step["inputs"]["x_prev"]["dtype"] == "DT_INT32"
    assert step["inputs"]["noise"]["tensor_shape"]["dim"][0]["size"] == "-1"
    assert "new_state_index" in step["outputs"]


@pytest.mark.parametrize("signature", SIGNATURES)
def test_predict_columnar_matches_in_process(server, reference, feeds, signature):
    inputs = {k: v.tolist() for k, v in feeds[signature].items()}
    status, body = call(f"{server.rest}/v1/models/wavenet:predict",
                        {"signature_name": signature, "inputs": inputs})
    assert status == 200, body
    expected = reference.run(signature, feeds[signature])
    outputs = body["outputs"]
    if len(expected) == 1:  # a single output is answered bare, as TF Serving does
        outputs = {next(iter(expected)): outputs}
    feeds_lib.assert_outputs_equal(outputs, expected)


@pytest.mark.parametrize("signature", ["init_state", "step", "sample_step", "log_prob"])
def test_predict_row_format(server, reference, feeds, signature):
    feed = feeds[signature]
    instances = [{k: v[i].tolist() for k, v in feed.items()} for i in range(feeds_lib.B)]
    if len(feed) == 1:  # a single input may be given bare
        instances = [row[next(iter(feed))] for row in instances]
    status, body = call(f"{server.rest}/v1/models/wavenet:predict",
                        {"signature_name": signature, "instances": instances})
    assert status == 200, body
    expected = reference.run(signature, feed)
    rows = body["predictions"]
    assert len(rows) == feeds_lib.B
    if len(expected) == 1:
        rows = [{next(iter(expected)): r} for r in rows]
    stacked = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in expected}
    feeds_lib.assert_outputs_equal(stacked, expected)


def test_default_signature_and_version_path(server, reference, feeds):
    feed = feeds["generate_seeded"]
    body = {"inputs": {k: v.tolist() for k, v in feed.items()}}  # no signature_name
    status, out = call(f"{server.rest}/v1/models/wavenet_all/versions/1:predict", body)
    assert status == 200, out
    np.testing.assert_array_equal(out["outputs"]["x"], reference.run("generate_seeded",
                                                                     feed)["x"])


BAD = [
    ("/v1/models/nope:predict", {"inputs": {}}, 404, "nope"),
    ("/v1/models/wavenet/versions/99:predict", {"inputs": {}}, 404, "99"),
    ("/v1/models/wavenet/versions/x1:predict", {"inputs": {}}, 400, "Version"),
    ("/v1/models/wavenet/labels/nolabel:predict", {"inputs": {}}, 404, "nolabel"),
    ("/v1/models/wavenet:predict", {"signature_name": "nope", "inputs": {}}, 400, "nope"),
    ("/v1/models/wavenet:predict",
     {"signature_name": "log_prob", "inputs": {"x": [1, 2], "lengths": [2]}}, 400, "shape"),
    ("/v1/models/wavenet:predict",
     {"signature_name": "log_prob", "inputs": {"x": [[1.5, 2.0]], "lengths": [2]}}, 400, "int32"),
    ("/v1/models/wavenet:predict",
     {"signature_name": "log_prob", "inputs": {"x": [[1, 2], [3]], "lengths": [2, 1]}}, 400,
     "ragged"),
    ("/v1/models/wavenet:predict",
     {"signature_name": "log_prob", "inputs": {"y": [[1, 2]]}}, 400, "missing"),
    ("/v1/models/wavenet:predict", {"signature_name": "log_prob"}, 400, "instances"),
    ("/v1/models/wavenet:predict",
     {"signature_name": "log_prob", "instances": [{"x": {"b64": "!!"}, "lengths": 1}]}, 400,
     "b64"),
    ("/v1/models/wavenet:classify", {"inputs": {}}, 501, "classify"),
    ("/v1/nothing", {"inputs": {}}, 404, "Malformed"),
]


@pytest.mark.parametrize("path,body,status,needle", BAD)
def test_bad_requests_answer_documented_errors(server, path, body, status, needle):
    got, out = call(server.rest + path, body)
    assert got == status, out
    assert needle.lower() in out["error"].lower()
    assert call(f"{server.rest}/v1/models/wavenet")[0] == 200  # still serving


def test_malformed_json_and_oversized_body(server):
    status, out = call(f"{server.rest}/v1/models/wavenet:predict", raw=b"{not json")
    assert status == 400 and "JSON" in out["error"]
    big = json.dumps({"inputs": {"x": [[1] * (3 << 20)]}}).encode()
    status, out = call(f"{server.rest}/v1/models/wavenet:predict", raw=big)
    assert status == 413 and "limit" in out["error"]
    assert call(f"{server.rest}/v1/models/wavenet")[0] == 200


def test_state_from_another_model_is_rejected(server, model_root):
    other = SavedModelBackend(model_root / "other" / "1")
    state = other.run("init_state", {"batch_template": np.zeros(2, np.int32)})
    inputs = {"x_prev": [1, 2], **{"state_" + k[10:]: v.tolist() for k, v in state.items()}}
    status, out = call(f"{server.rest}/v1/models/wavenet:predict",
                       {"signature_name": "step", "inputs": inputs})
    assert status == 400
    assert "state_" in out["error"]
    assert call(f"{server.rest}/v1/models/wavenet")[0] == 200


def test_b64_values_are_decoded_for_string_inputs():
    from serving import tensor_json

    feeds, style = tensor_json.parse_request(
        {"instances": [{"b64": base64.b64encode(b"\x00\xffab").decode()}]},
        {"text": np.dtype(object)})
    assert style == "row" and feeds["text"].tolist() == [b"\x00\xffab"]
    body = tensor_json.format_response({"out": np.array([b"\xff\x00"], object)}, "row")
    assert body == {"predictions": [{"b64": base64.b64encode(b"\xff\x00").decode()}]}
