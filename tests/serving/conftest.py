"""Serving fixtures: tiny exported models and a `keras-ar serve` subprocess on free ports.

Model base paths (exported once per pytest run with `artifacts.built_once`, copied into each
xdist worker's session, since tests publish versions into them):

    models/wavenet/1       tiny WaveNet (served as `wavenet`, latest policy, and as
                           `wavenet_all`, all-versions policy with label stable -> 1)
    models/other/1         a different tiny WaveNet (other state shapes), with a warm-up
                           request in assets.extra/tf_serving_warmup_requests

`wavenet_exports` (TFLite and ONNX of models/wavenet/1) are built once per run too;
`hostile_server` (tight limits) is shared by test_hostile_inputs.py and
test_rest_connections.py.
"""

import os
import pathlib
import resource
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.serving import artifacts

REPO = pathlib.Path(__file__).resolve().parents[2]
POLL_S = 0.5
MAX_REQUEST_BYTES = 2 << 20
#: the hostile_server's limits
MAX_BATCH, MAX_ELEMENTS, MAX_POSITIONS, MAX_STEPS = 64, 200_000, 4096, 512
MAX_CONNECTIONS = 32
ADDRESS_SPACE = 4 << 30


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def wavenet_model():
    return artifacts.tiny_wavenet(seed=0)


@pytest.fixture(scope="session")
def model_root(tmp_path_factory, wavenet_model):
    """This worker's copy (tests publish versions into it) of SavedModels built once a run."""
    def other(path):
        model = artifacts.tiny_wavenet(seed=1, dilations=[1, 2], residual_channels=4)
        artifacts.export_saved_model(model, path)
        write_warmup(path, batch=2)

    builds = {"wavenet": ("wavenet_seed0_savedmodel",
                          lambda path: artifacts.export_saved_model(wavenet_model, path)),
              "other": ("other_seed1_savedmodel_warmup", other)}
    root = tmp_path_factory.mktemp("models")
    for name, (key, build) in builds.items():
        shutil.copytree(artifacts.built_once(tmp_path_factory, key, build), root / name / "1")
    return root


@pytest.fixture(scope="session")
def wavenet_exports(tmp_path_factory, wavenet_model, model_root):
    """{"tflite": path, "onnx": path}: `wavenet_model` with the loop signatures."""
    saved = model_root / "wavenet" / "1"
    builds = {
        "tflite": lambda path: artifacts.export_tflite(wavenet_model, path,
                                                       saved_model_dir=saved),
        # check_atol=None: test_generator.py's sample comparisons are the parity check
        "onnx": lambda path: artifacts.export_onnx(wavenet_model, path, check_atol=None)}
    return {kind: artifacts.built_once(tmp_path_factory, f"wavenet_seed0_loop_{kind}", build)
            for kind, build in builds.items()}


def write_warmup(version_dir, batch):
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name="other", signature_name="init_state"))
    request.inputs["batch_template"].CopyFrom(tf.make_tensor_proto(np.zeros(batch, np.int32)))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))
    target = pathlib.Path(version_dir) / "assets.extra"
    target.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(target / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())


def write_config(path, root):
    path.write_text(f"""
model_config_list {{
  config {{ name: "wavenet" base_path: "{root / 'wavenet'}" model_platform: "tensorflow" }}
  config {{
    name: "wavenet_all" base_path: "{root / 'wavenet'}" model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 1 }}
  }}
  config {{ name: "other" base_path: "{root / 'other'}" }}
}}
""")
    return path


class ServerProcess:
    """`keras-ar serve` in a subprocess; `stop()` terminates it (always called). `ports`:
    (gRPC, REST) to bind (a restart on the same ports), else free ones."""

    def __init__(self, args, log_path, preexec_fn=None, ports=None):
        self.grpc_port, self.rest_port = ports or (free_port(), free_port())
        self.log_path = log_path
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                   PYTHONPATH=str(REPO))
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "serve", f"--port={self.grpc_port}",
             f"--rest_api_port={self.rest_port}", f"--max_request_bytes={MAX_REQUEST_BYTES}",
             f"--file_system_poll_wait_seconds={POLL_S}", *args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True,
            preexec_fn=preexec_fn)
        self._wait_ready(timeout_s=180)

    def _wait_ready(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("READY"):
                return
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"The server did not start; log:\n{self.log()}")

    @property
    def rest(self):
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self):
        return f"127.0.0.1:{self.grpc_port}"

    def log(self):
        self._log.flush()
        return pathlib.Path(self.log_path).read_text()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self._log.close()


@pytest.fixture(scope="session")
def server(model_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("server")
    config = write_config(work / "models.config", model_root)
    proc = ServerProcess([f"--model_config_file={config}"], work / "server.log")
    yield proc
    proc.stop()


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.fixture(scope="session")
def hostile_server(model_root, tmp_path_factory):
    """A server with tight limits under RLIMIT_AS = ADDRESS_SPACE, serving `wavenet` and a
    `speaker` (global condition); test_hostile_inputs.py and test_rest_connections.py."""
    work = tmp_path_factory.mktemp("hostile")
    speaker = artifacts.tiny_wavenet(seed=2, dilations=[1, 2], residual_channels=4,
                                     num_global_classes=3)
    artifacts.export_saved_model(speaker, work / "speaker" / "1",
                                 signatures=("init_state",))  # all the tests send it
    config = work / "models.config"
    config.write_text(f"""model_config_list {{
  config {{ name: "wavenet" base_path: "{model_root / 'wavenet'}" }}
  config {{ name: "speaker" base_path: "{work / 'speaker'}" }}
}}""")
    proc = ServerProcess([f"--model_config_file={config}", f"--max_batch_size={MAX_BATCH}",
                          f"--max_tensor_elements={MAX_ELEMENTS}",
                          f"--max_sequence_length={MAX_POSITIONS}",
                          f"--max_num_steps={MAX_STEPS}", "--rest_api_num_threads=4",
                          "--grpc_max_threads=4", "--rest_api_timeout_in_ms=3000",
                          f"--rest_api_max_connections={MAX_CONNECTIONS}"],
                         work / "server.log", preexec_fn=_limit_memory)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def grpc_channel(server):
    import grpc

    channel = grpc.insecure_channel(server.grpc_target)
    yield channel
    channel.close()


def publish_version(base_path, source_version, new_version):
    """Copy a version directory and rename it into place (atomic publish)."""
    base_path = pathlib.Path(base_path)
    tmp = base_path / f".tmp-{new_version}"
    shutil.copytree(base_path / str(source_version), tmp)
    os.replace(tmp, base_path / str(new_version))
