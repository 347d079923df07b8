"""Hot reload keeps a model answering: a half-copied or corrupt new version leaves the served
version in place (its error in GetModelStatus) and is retried until it loads; a version folder
replaced in place is loaded again while the old servable answers."""

import os
import shutil
import threading
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

from export.atomic import atomic_directory
from tests.serving.conftest import ServerProcess
from tests.serving.rest_client import call

CLIENTS = 8  # half gRPC, half REST
PAUSE_S = 0.7  # between copied files: longer than the server's poll (0.5 s)


class Clients:
    """Threads calling Predict (init_state, latest version) until stopped; every failure
    and every version that answered is kept."""

    def __init__(self, server, channel):
        self.server, self.channel = server, channel
        self.errors, self.versions, self.calls = [], set(), 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(i % 2 == 0,), daemon=True)
                         for i in range(CLIENTS)]
        for thread in self._threads:
            thread.start()

    def _loop(self, use_grpc):
        stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        while not self._stop.is_set():
            try:
                self._call(stub) if use_grpc else self._rest()
                self.calls += 1
            except Exception as error:
                self.errors.append(f"{type(error).__name__}: {error}")
            time.sleep(0.01)

    def _call(self, stub):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        request.model_spec.signature_name = "init_state"
        request.inputs["batch_template"].CopyFrom(tf.make_tensor_proto(np.zeros(1, np.int32)))
        self.versions.add(stub.Predict(request, timeout=30).model_spec.version.value)

    def _rest(self):
        status, body = call(f"{self.server.rest}/v1/models/m:predict",
                            {"signature_name": "init_state", "instances": [0]})
        assert status == 200, (status, body)

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def _statuses(channel):
    """{version: (state name, error code, error message)} over gRPC."""
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "m"
    response = stub.GetModelStatus(request, timeout=30)
    states = get_model_status_pb2.ModelVersionStatus.State
    return {s.version: (states.Name(s.state), s.status.error_code, s.status.error_message)
            for s in response.model_version_status}


def _copy_slowly(source, target, seen, channel, server):
    """Copy `source` into `target` file by file, saved_model.pb first as garbage (complete
    but corrupt), the good saved_model.pb last; between files, record version 2's status."""
    target.mkdir()
    (target / "saved_model.pb").write_bytes(b"not a SavedModel")
    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    for relative in [f for f in files if f.name != "saved_model.pb"] + [None]:
        time.sleep(PAUSE_S)
        seen.append(_statuses(channel).get(2))
        status, body = call(f"{server.rest}/v1/models/m/versions/2")
        seen.append(body if status == 200 else None)
        if relative is None:
            break
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, target / relative)
    tmp = target / ".saved_model.pb.tmp"
    shutil.copy2(source / "saved_model.pb", tmp)
    os.replace(tmp, target / "saved_model.pb")


def _wait(condition, what, server, timeout_s=90):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} after {timeout_s} s; log:\n" \
                                            f"{server.log()[-4000:]}"
        time.sleep(0.1)


@pytest.fixture
def reload_server(model_root, tmp_path):
    shutil.copytree(model_root / "wavenet" / "1", tmp_path / "m" / "1")
    proc = ServerProcess(["--model_name=m", f"--model_base_path={tmp_path / 'm'}",
                          "--load_retry_max_wait_seconds=2"], tmp_path / "server.log")
    channel = grpc.insecure_channel(proc.grpc_target)
    yield proc, channel, tmp_path / "m"
    channel.close()
    proc.stop()


@pytest.mark.slow
def test_failed_version_keeps_serving_and_is_retried(reload_server, model_root):
    server, channel, base = reload_server
    clients = Clients(server, channel)
    seen = []
    try:
        _copy_slowly(base / "1", base / "2", seen, channel, server)
        _wait(lambda: _statuses(channel) == {2: ("AVAILABLE", 0, "")}, "version 2 not served",
              server)
        before = clients.calls
        _wait(lambda: clients.calls > before + 20 and 2 in clients.versions, "no answers",
              server)
        # re-export version 2 in place (as --overwrite does): another model's files
        with atomic_directory(base / "2", overwrite=True) as tmp:
            shutil.copytree(model_root / "other" / "1", tmp, dirs_exist_ok=True)
        _wait(lambda: server.log().count("Loaded m version 2") == 2,
              "the replaced version 2 not loaded", server)
        before = clients.calls
        _wait(lambda: clients.calls > before + 20, "no answers", server)
    finally:
        clients.stop()
    assert clients.errors == [], clients.errors[:5]
    assert clients.versions == {1, 2}
    grpc_failed = [s for s in seen[0::2] if s is not None and s[1] != 0]
    assert grpc_failed and grpc_failed[0][0] == "END" and grpc_failed[0][2], seen
    rest_failed = [b for b in seen[1::2] if b and b["model_version_status"][0]["status"]
                   ["error_code"] != "OK"]
    assert rest_failed and rest_failed[0]["model_version_status"][0]["state"] == "END", seen
    metadata = call(f"{server.rest}/v1/models/m/metadata")[1]["metadata"]["signature_def"]
    served = {k: [int(d["size"]) for d in v["tensor_shape"]["dim"]]
              for k, v in metadata["signature_def"]["init_state"]["outputs"].items()}
    assert served == _init_state_shapes(model_root / "other" / "1")
    assert served != _init_state_shapes(model_root / "wavenet" / "1")
    print(f"{clients.calls} answers, no errors; version 2 failed {len(grpc_failed)} polls")


def _init_state_shapes(version_dir):
    from serving.servable import read_signature_defs

    outputs = read_signature_defs(version_dir)["init_state"].outputs
    return {k: [d.size for d in v.tensor_shape.dim] for k, v in outputs.items()}
