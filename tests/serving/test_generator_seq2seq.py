"""The Generator on sequence-to-sequence models (ByteNet, EncoderDecoderTransformer): a batch
of sources of different lengths as `local_condition`, greedy (temperature 0) and seeded
sampling with a stop token, the same ids on in-process SavedModel, TFLite, ONNX and a
`keras-ar serve` server (REST and gRPC), and the same as the Keras model's
`generate_from_noise` up to each row's end. ByteNet rows end at the target length rule,
floor(a |s|) + b positions.

Exports are tiny and shared by the module; TFLite and ONNX conversions happen only when a
test asks for them (those tests are marked slow).
"""

import numpy as np
import pytest

from serving.generator import Generator, noise_for
from serving.onnx_backend import OnnxBackend
from serving.saved_model_backend import SavedModelBackend
from serving.tf_serving_backend import TFServingBackend
from serving.tflite_backend import TFLiteBackend
from tests.serving.conftest import ServerProcess

SLOW = pytest.mark.slow
LOOP = ("init_state", "prefill", "sample_step", "sample_chunk", "generate")
#: what the chunked and in-graph loops run, converted to TFLite and ONNX (no prompt, and
#: chunks serve every run: no prefill or sample_step); the SavedModels keep LOOP
CHUNKED = ("init_state", "sample_chunk", "generate")
SOURCE_VOCAB, MAX_SOURCE = 6, 6  # ids 0..5, pad id 6
#: |s| = 6, 1, 3; ByteNet (a = 1.5, b = 2) unfolds them to 11, 3 and 6 target positions
SOURCES = [[1, 2, 3, 4, 5, 0], [2], [3, 1, 4]]
SOURCE_TEXT = ["bcdefa", "c", "dbe"]  # the same ids through the ByteNet's source vocabulary
UNFOLDED = [11, 3, 6]
STEPS = {"byte_net": 11, "encoder_decoder": 12}  # each model's max_length
CASES = {"greedy": dict(temperature=0.0), "sampled": dict(temperature=1.0, seed=3)}


def _byte_net():
    from keras_ar.models import ByteNet

    return ByteNet(source_vocab_size=SOURCE_VOCAB, target_vocab_size=8,
                   max_source_length=MAX_SOURCE, a=1.5, b=2, encoder_dilations=[1, 2],
                   decoder_dilations=[1, 2], channels=8,
                   metadata={"source_vocabulary": list("abcdef"),
                             "vocabulary": list("ABCDEFGH")})


def _encoder_decoder():
    from keras_ar.models import EncoderDecoderTransformer

    return EncoderDecoderTransformer(source_vocab_size=SOURCE_VOCAB, target_vocab_size=8,
                                     max_source_length=MAX_SOURCE, encoder_layers=1,
                                     num_layers=1, num_heads=2, hidden_dim=8, max_length=12)


FAMILIES = {"byte_net": _byte_net, "encoder_decoder": _encoder_decoder}


def padded(rows=SOURCES):
    out = np.full((len(rows), MAX_SOURCE), SOURCE_VOCAB, np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


@pytest.fixture(scope="module")
def models():
    import keras

    made = {}
    for name, factory in FAMILIES.items():
        keras.utils.set_random_seed(0)
        made[name] = factory()
    return made


@pytest.fixture(scope="module")
def s2s_root(models, tmp_path_factory):
    """`<root>/<name>/1`: a SavedModel per model (the loop signatures), a TF Serving base."""
    from export.saved_model import export_saved_model

    root = tmp_path_factory.mktemp("seq2seq")
    for name, model in models.items():
        export_saved_model(model, root / name / "1", signatures=LOOP)
    return root


@pytest.fixture(scope="module")
def s2s_server(s2s_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("seq2seq_server")
    config = work / "models.config"
    entries = "\n".join(f'  config {{ name: "{name}" base_path: "{s2s_root / name}" }}'
                        for name in FAMILIES)
    config.write_text(f"model_config_list {{\n{entries}\n}}\n")
    proc = ServerProcess([f"--model_config_file={config}"], work / "server.log")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def backends(models, s2s_root, request):
    made = {}

    def make(name, kind):
        if (name, kind) in made:
            return made[name, kind]
        saved = s2s_root / name / "1"
        if kind == "savedmodel":
            backend = SavedModelBackend(saved)
        elif kind == "tflite":
            from export.tflite import export_tflite

            path = s2s_root / "tflite" / name
            export_tflite(models[name], path, signatures=CHUNKED, saved_model_dir=saved)
            backend = TFLiteBackend(path)
        elif kind == "onnx":
            from export.onnx import export_onnx

            path = s2s_root / "onnx" / name
            # check_atol=None: the id comparisons below are the parity check
            export_onnx(models[name], path, signatures=CHUNKED, check_atol=None)
            backend = OnnxBackend(path)
        else:
            server = request.getfixturevalue("s2s_server")
            url = (f"{server.rest}/v1/models/{name}" if kind == "rest"
                   else f"grpc://{server.grpc_target}/{name}")
            backend = TFServingBackend(url, manifest=saved)
        made[name, kind] = backend
        return backend

    yield make
    for backend in made.values():
        backend.close()


@pytest.fixture(scope="module")
def references(backends):
    """(family, case) -> (options, result without a stop token, result with one) on the
    SavedModel; the stop token is the value row 0 takes at position 2 without one."""
    refs = {}
    for family in FAMILIES:
        generator = Generator(backends(family, "savedmodel"))
        for case, options in CASES.items():
            free = generator.generate(STEPS[family], conditions={"local_condition": SOURCES},
                                      **options)
            options = dict(options, stop_token=int(free["x"][0, 2]))
            stopped = generator.generate(STEPS[family],
                                         conditions={"local_condition": SOURCES}, **options)
            refs[family, case] = options, free, stopped
    return refs


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_reference_rows_end_by_rule_and_stop_and_match_keras(references, models, family,
                                                             case):
    options, free, stopped = references[family, case]
    steps, stop = STEPS[family], options["stop_token"]
    limits = UNFOLDED if family == "byte_net" else [steps] * 3
    assert free["x"].shape == (3, steps)
    assert free["lengths"].tolist() == limits  # no stop token: each row's own length
    for row, limit in enumerate(limits):
        assert np.all(free["x"][row, limit:] == 0)  # past the end: the pad value
    # the stop token ends row 0 by position 2, and every row at its first stop
    assert stopped["lengths"][0] <= 2
    for row in range(3):
        end = int(stopped["lengths"][row])
        assert stop not in stopped["x"][row, :end] and np.all(stopped["x"][row, end:] == stop)
        np.testing.assert_array_equal(stopped["x"][row, :end], free["x"][row, :end])
    # Keras's own loop on the same noise: the same ids up to each row's end
    model = models[family]
    noise = noise_for(options.get("seed", 0), 3, steps, model.noise_spec)
    keras_out = model.generate_from_noise(
        noise, conditions={"local_condition": padded()},
        **{k: v for k, v in options.items() if k != "seed"})
    keras_x = np.asarray(keras_out["x"])
    for row in range(3):
        end = int(stopped["lengths"][row])
        np.testing.assert_array_equal(stopped["x"][row, :end], keras_x[row, :end])
        assert int(keras_out["lengths"][row]) >= end


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_source_is_read(references, backends, family):
    """Other sources give other greedy ids; a padded array equals the ragged rows."""
    generator = Generator(backends(family, "savedmodel"))
    _, free, _ = references[family, "greedy"]
    as_array = generator.generate(STEPS[family], conditions={"local_condition": padded()},
                                  temperature=0.0)
    np.testing.assert_array_equal(as_array["x"], free["x"])
    other = generator.generate(STEPS[family], temperature=0.0,
                               conditions={"local_condition": [[5, 5, 0, 1, 2, 3], [4],
                                                               [0, 0, 5]]})
    assert not np.array_equal(other["x"], free["x"])


BACKENDS = [pytest.param("tflite", marks=SLOW), pytest.param("onnx", marks=SLOW), "rest",
            "grpc"]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("kind", BACKENDS)
def test_every_backend_gives_the_same_ids(references, backends, family, kind):
    """Chunks of 4 (row ends and stops fall inside chunks) and the in-graph loop."""
    generator = Generator(backends(family, kind), chunk_size=4)
    for case in CASES:
        options, free, stopped = references[family, case]
        for expected, extra in ((stopped, {}), (free, {"stop_token": None})):
            for graph in (False, True):
                out = generator.generate(STEPS[family], use_graph_loop=graph,
                                         conditions={"local_condition": SOURCES},
                                         **dict(options, **extra))
                np.testing.assert_array_equal(out["x"], expected["x"], err_msg=f"{case}")
                np.testing.assert_array_equal(out["lengths"], expected["lengths"])


# ------------------------------------------------------------------------ refusals
BAD_SOURCES = [
    ([[1, 2, 3, 4, 5, 0, 1]], r"row 0 has 7 source ids; this \w+ takes at most "
                              r"max_source_length=6"),
    ([[1, 2], []], "row 1 is empty"),
    ([], "is empty"),
    ([[1, 9]], r"holds 9 .*source ids \(pad = 6\) in \[0, 6\]"),
    ([[-1, 2]], "holds -1"),
    ([[1, 6, 2]], "row 0 has a token after a pad id 6"),
    ([[1.5, 2]], "integer source ids are expected"),
]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("source, message", BAD_SOURCES)
def test_bad_sources_are_refused_on_the_host(backends, family, source, message):
    generator = Generator(backends(family, "savedmodel"))
    with pytest.raises(ValueError, match=message):
        generator.generate(3, conditions={"local_condition": source})


def test_lengths_the_rule_cannot_fit_are_refused(backends):
    byte_net = Generator(backends("byte_net", "savedmodel"))
    source = {"local_condition": SOURCES[1:]}  # unfolded to 3 and 6 positions
    with pytest.raises(ValueError, match=r"num_steps=12 .* at most max_length=11"):
        byte_net.generate(12, conditions={"local_condition": SOURCES})
    with pytest.raises(ValueError, match=r"num_steps=7 .*floor\(1.5 \|s\|\) \+ 2 .* at most "
                                         r"6 for its longest source"):
        byte_net.generate(7, conditions=source)
    with pytest.raises(ValueError, match=r"row 0 \(\|s\| = 1 source tokens\)"):
        byte_net.generate(2, conditions=source, prompt=np.zeros((2, 3), np.int32))
    assert byte_net.generate(6, conditions=source)["lengths"].tolist() == [3, 6]
    transformer = Generator(backends("encoder_decoder", "savedmodel"))
    with pytest.raises(ValueError, match=r"num_steps=13 .* at most max_length=12"):
        transformer.generate(13, conditions={"local_condition": SOURCES})
    for generator in (byte_net, transformer):
        with pytest.raises(ValueError, match="generates from a source"):
            generator.generate(3)
        with pytest.raises(ValueError, match="batch_size=2, but the source has 3 rows"):
            generator.generate(3, batch_size=2, conditions={"local_condition": SOURCES})


def _refused(server, name, signature, feeds):
    """(REST status, error) and (gRPC code, details) of a request the server refuses."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tests.serving.rest_client import call

    status, body = call(f"{server.rest}/v1/models/{name}:predict",
                        {"signature_name": signature,
                         "inputs": {k: np.asarray(v).tolist() for k, v in feeds.items()}})
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = name, signature
    for key, value in feeds.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    with grpc.insecure_channel(server.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request,
                                                                               timeout=60)
    return (status, body.get("error", "")), (caught.value.code(), caught.value.details())


SERVER_REFUSALS = [
    (np.ones((1, 7), np.int32), ["7 source positions", "max_source_length=6"]),
    (np.full((1, 6), 6, np.int32), ["row 0 is empty"]),
    (np.array([[1, 9, 6, 6, 6, 6]], np.int32), ["holds 9", "source ids (pad = 6)"]),
    (np.array([[1, 2, 3]], np.int32), ["3 source positions", "pad each row with the pad id 6"]),
]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_server_refuses_bad_sources_and_lengths(s2s_server, family):
    import grpc

    for source, texts in SERVER_REFUSALS:
        (status, error), (code, details) = _refused(s2s_server, family, "init_state",
                                                    {"local_condition": source})
        assert status == 400 and code == grpc.StatusCode.INVALID_ARGUMENT, (error, details)
        for text in texts:
            assert text in error and text in details, (text, error, details)
    steps = STEPS[family] + 1  # one target position more than the model holds
    feeds = {"noise": np.full((1, steps, 1), 0.5, np.float32),
             "prompt": np.zeros((1, steps), np.int32), "prompt_length": np.zeros(1, np.int32),
             "temperature": np.ones(1, np.float32), "top_k": np.zeros(1, np.int32),
             "top_p": np.ones(1, np.float32), "local_condition": padded(SOURCES[:1])}
    (status, error), (code, details) = _refused(s2s_server, family, "generate", feeds)
    assert status == 400 and code == grpc.StatusCode.INVALID_ARGUMENT, (error, details)
    for text in (error, details):
        assert f"covers {steps} positions" in text and f"at most {steps - 1}" in text
        assert "the model's length" in text


# ------------------------------------------------------------------------ keras-ar generate
def _cli(*args):
    from pipelines import cli

    return cli.main(["generate", *map(str, args)])


def test_cli_generates_from_source_ids_and_text(references, s2s_root, tmp_path):
    _, free, _ = references["byte_net", "greedy"]
    model = s2s_root / "byte_net" / "1"
    ids = [x for row in SOURCES for x in ("--source-ids", ",".join(map(str, row)))]
    assert _cli("--model", model, *ids, "--temperature", 0, "--out", tmp_path / "a.npz") == 0
    out = np.load(tmp_path / "a.npz")  # --num-steps left out: the longest row's 11
    np.testing.assert_array_equal(out["x"], free["x"])
    np.testing.assert_array_equal(out["lengths"], UNFOLDED)
    text = [x for row in SOURCE_TEXT for x in ("--source", row)]
    assert _cli("--model", model, *text, "--temperature", 0, "--num-steps", 11, "--out",
                tmp_path / "b.txt") == 0
    lines = (tmp_path / "b.txt").read_text().splitlines()
    # one-character tokens are joined without spaces
    assert lines == ["".join("ABCDEFGH"[i] for i in free["x"][row, :UNFOLDED[row]])
                     for row in range(3)]
    # paused after 4 steps with the run saved, then resumed: the same ids
    state = tmp_path / "run.npz"
    assert _cli("--model", model, *ids, "--temperature", 0, "--max-steps", 4, "--save-state",
                state, "--chunk-size", 3, "--out", tmp_path / "c.npz") == 0
    assert np.all(np.load(tmp_path / "c.npz")["x"][:, 4:] == 0)
    assert _cli("--model", model, "--resume", state, "--out", tmp_path / "d.npz") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "d.npz")["x"], free["x"])


@pytest.mark.parametrize("family, args, texts", [
    ("byte_net", ["--source-ids", "1,2,3,4,5,0,1"], ["row 0 has 7 source ids",
                                                    "max_source_length=6"]),
    ("byte_net", ["--source-ids", "1,9"], ["holds 9", "(pad = 6) in [0, 6]"]),
    ("byte_net", ["--source-ids", ""], ["is empty"]),
    ("byte_net", ["--source-ids", "1,x"], ["--source-ids '1,x'", "integer ids"]),
    ("byte_net", ["--source", "abz"], ["'z'", "not in the source vocabulary"]),
    ("byte_net", ["--source", "abc", "--num-steps", "12"], ["num_steps=12",
                                                           "max_length=11"]),
    ("byte_net", ["--source", "a", "--num-steps", "4"], ["num_steps=4", "floor(1.5 |s|) + 2",
                                                        "at most 3"]),
    ("byte_net", ["--num-steps", "3"], ["generates from a source", "--source"]),
    ("encoder_decoder", ["--source", "abc"], ["records no source vocabulary",
                                              "--source-ids"]),
    ("encoder_decoder", ["--source-ids", "1", "--num-steps", "13"], ["max_length=12"]),
])
def test_cli_refuses_bad_sources_and_lengths(s2s_root, tmp_path, capsys, family, args,
                                             texts):
    code = _cli("--model", s2s_root / family / "1", *args, "--out", tmp_path / "x.npz")
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("keras-ar generate: error:"), error
    for text in texts:
        assert text in error, (text, error)
    assert not (tmp_path / "x.npz").exists()
