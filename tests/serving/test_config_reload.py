"""`--model_config_file_poll_wait_seconds`: models.config changes apply without a restart."""

import os
import shutil
import time

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from tests.serving.conftest import ServerProcess
from tests.serving.test_versions import _init_state

CONFIG_POLL_S = 0.5


def _config(path, models):
    """Write a models.config atomically (temporary file, then rename)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("model_config_list {\n" + "\n".join(models) + "\n}\n")
    os.replace(tmp, path)


def _entry(name, base, policy=""):
    return f'  config {{ name: "{name}" base_path: "{base}" {policy} }}'


def _versions(stub, name):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    try:
        return sorted(s.version for s in stub.GetModelStatus(request, timeout=30)
                      .model_version_status)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        return None


def _wait_for(stub, expected, server, timeout_s=60):
    start = time.monotonic()
    while {name: _versions(stub, name) for name in expected} != expected:
        assert time.monotonic() - start < timeout_s, (
            f"not {expected} after {timeout_s} s; log:\n{server.log()[-3000:]}")
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def reload_server(model_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("reload")
    for version in (1, 2):  # a base path of its own: other tests publish into model_root
        shutil.copytree(model_root / "wavenet" / "1", work / "m" / str(version))
    config = work / "models.config"
    _config(config, [_entry("m", work / "m")])
    proc = ServerProcess([f"--model_config_file={config}",
                          f"--model_config_file_poll_wait_seconds={CONFIG_POLL_S}"],
                         work / "server.log")
    channel = grpc.insecure_channel(proc.grpc_target)
    yield proc, channel, config, work
    channel.close()
    proc.stop()


@pytest.mark.slow
def test_config_changes_apply_without_restart(reload_server, model_root):
    server, channel, config, work = reload_server
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    assert _wait_for(stub, {"m": [2], "other": None}, server) < 1  # latest policy
    # a model added and a version policy changed
    _config(config, [_entry("m", work / "m", "model_version_policy { all {} } "
                                             'version_labels { key: "old" value: 1 }'),
                     _entry("other", model_root / "other")])
    took = _wait_for(stub, {"m": [1, 2], "other": [1]}, server)
    assert _init_state(channel, "m", 1).model_spec.version.value == 1
    # a specific policy drops version 2 (a version still on disk)
    _config(config, [_entry("m", work / "m", "model_version_policy { specific { "
                                             "versions: 1 } }"),
                     _entry("other", model_root / "other")])
    _wait_for(stub, {"m": [1], "other": [1]}, server)
    # a model removed: its requests answer NOT_FOUND, the rest keep serving
    _config(config, [_entry("other", model_root / "other")])
    _wait_for(stub, {"m": None, "other": [1]}, server)
    with pytest.raises(grpc.RpcError) as error:
        _init_state(channel, "m", 1)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    # a file that does not parse is reported and the running config kept
    config.write_text("model_config_list { config { name: ")
    deadline = time.monotonic() + 30
    while "Model config" not in server.log() or "poll failed" not in server.log():
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.1)
    assert _versions(stub, "other") == [1]
    assert _init_state(channel, "other", 1).model_spec.version.value == 1
    print(f"config change applied after {took:.2f} s (poll {CONFIG_POLL_S} s + load)")
