"""A server killed mid-generation: `TFServingBackend` retries until it is back (same samples
as an uninterrupted run), and `keras-ar generate --save_state` keeps the progress for
`--resume` when it does not retry."""

import shutil
import threading
import time

import numpy as np
import pytest

from pipelines import cli
from serving.generation_run import GenerationRun
from serving.generator import Generator
from serving.saved_model_backend import SavedModelBackend
from serving.tf_serving_backend import TFServingBackend
from tests.serving.conftest import ServerProcess

STEPS, BATCH, SEED, CHUNK = 48, 2, 5, 4


class Restartable:
    """A `keras-ar serve` of one model that can be killed (SIGKILL) and started again on
    the same ports."""

    def __init__(self, base, work):
        self.args = ["--model_name=m", f"--model_base_path={base}"]
        self.work, self.starts = work, 0
        self.proc = self._start(None)

    def _start(self, ports):
        self.starts += 1
        return ServerProcess(self.args, self.work / f"server{self.starts}.log", ports=ports)

    def kill(self):
        self.proc.process.kill()
        self.proc.process.wait()
        self.proc.stop()

    def restart(self, after_s=0.0):
        time.sleep(after_s)
        self.proc = self._start((self.proc.grpc_port, self.proc.rest_port))

    @property
    def urls(self):
        return {"grpc": f"grpc://{self.proc.grpc_target}/m",
                "rest": f"{self.proc.rest}/v1/models/m"}


@pytest.fixture
def restartable(model_root, tmp_path):
    version = model_root / "wavenet" / "1"
    shutil.copytree(version, tmp_path / "m" / "1")
    server = Restartable(tmp_path / "m", tmp_path)
    yield server, version
    server.proc.stop()


@pytest.mark.slow
def test_backend_retries_through_a_restart(restartable):
    server, version = restartable
    expected = Generator(SavedModelBackend(version), chunk_size=CHUNK).generate(
        STEPS, BATCH, SEED)
    backends = {k: TFServingBackend(url, manifest=version, retry_deadline_s=60)
                for k, url in server.urls.items()}
    killed, lock, restarter = threading.Event(), threading.Lock(), []

    def kill_once(t0, values, run):  # the first client past step 16 kills the server
        with lock:
            if run.t >= 16 and not killed.is_set():
                killed.set()
                server.kill()
                restarter.append(threading.Thread(target=server.restart, args=(1.5,)))
                restarter[0].start()

    outputs, failures = {}, []

    def generate(kind):
        try:
            outputs[kind] = Generator(backends[kind], chunk_size=CHUNK).generate(
                STEPS, BATCH, SEED, callback=kill_once)
        except Exception as error:
            failures.append(f"{kind}: {error}")

    threads = [threading.Thread(target=generate, args=(k,)) for k in backends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    restarter[0].join()
    assert killed.is_set() and server.starts == 2
    assert failures == []
    for kind, out in outputs.items():
        np.testing.assert_array_equal(out["x"], expected["x"], err_msg=kind)
        np.testing.assert_array_equal(out["lengths"], expected["lengths"], err_msg=kind)
    for backend in backends.values():
        backend.close()


def test_other_errors_fail_at_once(server, model_root):
    """No retries for an unknown model (the session's server: no restart needed here)."""
    version = model_root / "wavenet" / "1"
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="NOT_FOUND"):
        TFServingBackend(f"grpc://{server.grpc_target}/nosuch", manifest=version)
    with pytest.raises(RuntimeError, match="404"):
        TFServingBackend(f"{server.rest}/v1/models/nosuch", manifest=version)
    assert time.monotonic() - start < 5


def _generate(model, out, *extra):
    return cli.main(["generate", "--model", str(model), "--num_steps", "300", "--batch_size",
                     "2", "--seed", "7", "--chunk_size", "2", "--out", str(out), *extra])


@pytest.mark.slow
def test_save_state_survives_a_killed_server(restartable, tmp_path, capsys):
    server, version = restartable
    state = tmp_path / "run.npz"

    def kill_after_first_chunk():
        while not state.exists():
            time.sleep(0.002)
        server.kill()

    killer = threading.Thread(target=kill_after_first_chunk)
    killer.start()
    assert _generate(server.urls["grpc"], tmp_path / "a.npz", "--manifest", str(version),
                     "--save_state", str(state), "--retry_deadline", "0") == 2
    killer.join()
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"--resume {state}" in error, error
    assert "UNAVAILABLE" in error, error
    saved = GenerationRun.load(state)
    assert 0 < saved.t < 300
    server.restart()
    assert _generate(server.urls["grpc"], tmp_path / "resumed.npz", "--manifest", str(version),
                     "--resume", str(state), "--save_state", str(state)) == 0
    assert _generate(version, tmp_path / "whole.npz") == 0
    with np.load(tmp_path / "resumed.npz") as resumed, np.load(tmp_path / "whole.npz") as whole:
        np.testing.assert_array_equal(resumed["x"], whole["x"])
        np.testing.assert_array_equal(resumed["lengths"], whole["lengths"])
    assert GenerationRun.load(state).t == 300  # the resumed run saved as it went
