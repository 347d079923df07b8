"""Serving: step round trips through the TF Serving-compatible server, and generation time
per backend.

A WaveNet (10 layers x 64 channels, 256-way mu-law head) is exported to SavedModel (served
by `keras-ar serve`, started here in a subprocess on free 127.0.0.1 ports), TFLite and ONNX;
then, in one run:

* `sample_step` round trips at batch 1 (`serving.Generator.step`: host feeds, the call, the
  state round trip) from 1, 8 and 32 concurrent clients (threads in this process, each with
  its own `TFServingBackend` and state) over REST and gRPC: steps/s over all clients, p50
  and p99 latency per step; at 1 client, the p50 overhead per step vs the same loop on an
  in-process SavedModel, as a ratio and in ms.
  The in-process SavedModel runs signatures through session callables, as the server does;
  one more row times the eager `tf.saved_model.load(...).signatures[...]` call for reference.
  Next to them, the floor of Python gRPC itself: a bare echo of the same number of bytes
  (`bench/grpc_echo.py`).
  The clients and the server share this machine's cores, so many-client figures include
  client-side contention (the GIL of this process among them).
* generating 1 s of 16 kHz audio at batch 1 on SavedModel, TFLite, ONNX and the server
  (gRPC, and REST for the graph loop), each through the exported `generate` signature (the
  whole loop in the graph) and through the host step loop, as seconds per second of audio
  and as ratios to in-process Keras (`model.generate`). Times scale to 1 s from the samples
  timed (named in each case): 16000, but 2000 for the step loop over gRPC (a step costs the
  same at every position); `--quick` times 800 everywhere.
* Full run: about 7 minutes here (REST round trips are JSON: ~1.3 MB per step for this
  state; round-trip counts per client are reduced for REST, see `_calls`).
"""

import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from bench import grpc_echo
from bench.common import best_time, concurrent_clients

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000
CLIENTS = (1, 8, 32)
SIGNATURES = ("init_state", "prefill", "sample_step", "generate")


def _model():
    from keras_ar.models import WaveNet

    return WaveNet(num_classes=256, dilations=[2 ** i for i in range(10)],
                   residual_channels=64, skip_channels=64)


def run(quick=False):
    import keras

    keras.utils.set_random_seed(0)
    model = _model()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = _export(model, pathlib.Path(tmp))
        server = Server(paths["base"], pathlib.Path(tmp) / "server.log")
        try:
            rows += _round_trip_rows(paths["savedmodel"], server, quick)
            rows += grpc_echo.rows(_state_bytes(model), calls=50 if quick else 300)
            rows += _audio_rows(model, paths, server, quick)
        finally:
            server.stop()
    return rows


def _export(model, root):
    from export.onnx import export_onnx
    from export.saved_model import export_saved_model
    from export.tflite import export_tflite

    saved = root / "models" / "wavenet" / "1"
    export_saved_model(model, saved)
    export_tflite(model, root / "tflite", signatures=SIGNATURES, saved_model_dir=saved)
    export_onnx(model, root / "onnx", signatures=("init_state", "sample_step", "generate"),
                check_atol=None)  # parity is tests/serving's job
    return {"base": saved.parent, "savedmodel": saved, "tflite": root / "tflite",
            "onnx": root / "onnx"}


def _state_bytes(model):
    """Bytes of the float32 state one `sample_step` row sends each way."""
    return sum(4 * int(np.prod(spec.shape[1:])) for spec in model.state_spec(1).values())


# ----------------------------------------------------------------------- round trips
def _step_latencies(generator, calls, seed, ready=None):
    """Latency (s) of each of `calls` one-step round trips of a batch-1 run."""
    run = generator.start(calls, batch_size=1, seed=seed)
    generator.step(run)  # warm-up (first call: connection, tracing)
    run = generator.start(calls, batch_size=1, seed=seed)
    if ready is not None:
        ready()
    out = []
    while not run.finished:
        start = time.perf_counter()
        generator.step(run)
        out.append(time.perf_counter() - start)
    return out


def _concurrent(make_generator, clients, calls):
    """(steps/s over all clients, latencies) with `clients` threads stepping at once."""
    generators = [make_generator() for _ in range(clients)]
    try:
        wall, results = concurrent_clients(
            clients, lambda i, ready: _step_latencies(generators[i], calls, seed=i, ready=ready))
    finally:
        for generator in generators:
            generator.backend.close()
    latencies = np.concatenate(results)
    return len(latencies) / wall, latencies


def _calls(protocol, clients, quick):
    """Round trips per client: 200 (20 quick) over gRPC; REST (JSON, ~40x slower per step
    for this state) about 400 (40 quick) in all, at least 12 (4) per client."""
    if protocol == "gRPC":
        return 20 if quick else 200
    return max(4 if quick else 12, (40 if quick else 400) // clients)


def _round_trip_rows(saved, server, quick):
    from serving.generator import Generator
    from serving.saved_model_backend import SavedModelBackend
    from serving.tf_serving_backend import TFServingBackend

    rows = []
    eager = np.array(_step_latencies(Generator(_EagerBackend(saved)), 20 if quick else 200,
                                     seed=0))
    case = "sample_step, batch 1, in-process tf.saved_model.load signature call (eager)"
    rows += _latency_rows(case, len(eager) / eager.sum(), eager)
    local = Generator(SavedModelBackend(saved))
    base = np.array(_step_latencies(local, 20 if quick else 200, seed=0))
    base_p50 = float(np.percentile(base, 50))
    case = "sample_step, batch 1, in-process SavedModel (session callable)"
    rows += _latency_rows(case, len(base) / base.sum(), base)
    rows.append(_row(case, "p50 speed-up vs the eager signature call",
                     float(np.percentile(eager, 50)) / base_p50, "x"))
    urls = {"REST": f"{server.rest}/v1/models/wavenet",
            "gRPC": f"grpc://{server.grpc_target}/wavenet"}
    for protocol, url in urls.items():
        for clients in CLIENTS:
            rate, latencies = _concurrent(
                lambda: Generator(TFServingBackend(url, manifest=saved)), clients,
                _calls(protocol, clients, quick))
            case = f"sample_step, batch 1, {protocol}, {clients} client(s)"
            rows += _latency_rows(case, rate, latencies)
            if clients == 1:
                p50 = float(np.percentile(latencies, 50))
                rows.append(_row(case, "p50 overhead vs in-process", p50 / base_p50, "x"))
                rows.append(_row(case, "p50 added per step", 1000 * (p50 - base_p50), "ms"))
    return rows


class _EagerBackend:
    """The previous in-process path, for reference: `tf.saved_model.load(path).signatures`
    called with EagerTensors (the signature wrapper binds and casts every argument)."""

    name = "eager"

    def __init__(self, path):
        import tensorflow as tf

        from serving.saved_model_backend import SavedModelBackend

        reference = SavedModelBackend(path)
        self.signatures, self._manifest = reference.signatures, reference.manifest()
        self._functions = dict(tf.saved_model.load(str(path)).signatures)

    def manifest(self):
        return self._manifest

    def run(self, signature, feeds):
        import tensorflow as tf

        inputs = self.signatures[signature]["inputs"]
        out = self._functions[signature](**{k: tf.constant(np.asarray(v, inputs[k][1]))
                                            for k, v in feeds.items()})
        return {k: v.numpy() for k, v in out.items()}

    def close(self):
        pass


def _latency_rows(case, rate, latencies):
    return [_row(case, "steps/s (all clients)", rate, "steps/s"),
            _row(case, "p50 latency", 1000 * np.percentile(latencies, 50), "ms"),
            _row(case, "p99 latency", 1000 * np.percentile(latencies, 99), "ms")]


# ----------------------------------------------------------------------- 1 s of audio
def _audio_rows(model, paths, server, quick):
    from serving.generator import Generator
    from serving.onnx_backend import OnnxBackend
    from serving.saved_model_backend import SavedModelBackend
    from serving.tf_serving_backend import TFServingBackend
    from serving.tflite_backend import TFLiteBackend

    full = 800 if quick else SAMPLE_RATE
    keras_s = best_time(lambda: model.generate(batch_size=1, num_steps=full, seed=0),
                        repeats=1) * SAMPLE_RATE / full  # seconds of work per 1 s of audio
    label = "1 s of 16 kHz audio, batch 1"
    rows = [_row(f"{label}, Keras model.generate ({full} samples timed)",
                 "seconds per 1 s of audio", keras_s, "s")]
    backends = {"SavedModel": lambda: SavedModelBackend(paths["savedmodel"]),
                "TFLite": lambda: TFLiteBackend(paths["tflite"]),
                "ONNX": lambda: OnnxBackend(paths["onnx"]),
                "gRPC": lambda: TFServingBackend(f"grpc://{server.grpc_target}/wavenet",
                                                 manifest=paths["savedmodel"]),
                "REST": lambda: TFServingBackend(f"{server.rest}/v1/models/wavenet",
                                                 manifest=paths["savedmodel"])}
    for name, make in backends.items():
        generator = Generator(make())
        loops = {"generate signature": True, "step loop": False}
        if name == "REST":  # ~3 ms per JSON round trip: the step loop adds nothing new
            loops = {"generate signature": True}
        for loop, graph in loops.items():
            # a step costs the same at every position: remote step loops time fewer steps
            steps = full if graph or name not in ("gRPC", "REST") else min(full, 2000)
            generator.generate(50, seed=1, use_graph_loop=graph)  # warm-up
            seconds = best_time(lambda: generator.generate(steps, seed=0,
                                                           use_graph_loop=graph),
                                repeats=1, warmup=0) * SAMPLE_RATE / steps
            case = f"{label}, {name} {loop} ({steps} samples timed)"
            rows.append(_row(case, "seconds per 1 s of audio", seconds, "s"))
            rows.append(_row(case, "ratio to Keras generate", seconds / keras_s, "x"))
        generator.backend.close()
    return rows


def _row(case, metric, value, unit):
    return {"benchmark": "serving", "case": case, "metric": metric, "value": float(value),
            "unit": unit}


# ----------------------------------------------------------------------- server
def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`keras-ar serve` for one model base path, in a subprocess on free loopback ports."""

    def __init__(self, base_path, log_path, timeout_s=300, extra_args=()):
        self.grpc_port, self.rest_port = _free_port(), _free_port()
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
        self._log = open(log_path, "w")
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "serve", f"--port={self.grpc_port}",
             f"--rest_api_port={self.rest_port}", "--model_name=wavenet",
             f"--model_base_path={base_path}", "--file_system_poll_wait_seconds=0",
             "--rest_api_num_threads=32", "--grpc_max_threads=32", *extra_args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("READY"):
                # keep draining stdout so the server never blocks on a full pipe
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                return
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"keras-ar serve did not start; log:\n"
                           f"{pathlib.Path(log_path).read_text()[-4000:]}")

    @property
    def rest(self):
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self):
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
