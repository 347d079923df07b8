"""Streaming with the state in the caller's hands: `sample_chunk` round trips against the
in-graph `generate` loop.

A WaveNet (10 layers x 64 channels, dilations 1..512, 256-way head) is exported to
SavedModel (served by `keras-ar serve` on free 127.0.0.1 ports), TFLite and ONNX; a
CausalTransformer (4 layers x 128, vocab 256, 512 context) to SavedModel and TFLite. In one
run, interleaved (ratios are within this run):

* streaming samples/s: `serving.Generator(chunk_size=256).generate` (the state crosses the
  runtime boundary once per 256 samples, host noise and bookkeeping included) against the
  exported `generate` signature on the same backend (the whole loop in the graph), batch 1
  and 16, on TFLite and ONNX Runtime (1 thread each), and over `keras-ar serve` gRPC against
  the in-process SavedModel;
* per-chunk overhead: `Generator.chunk` of K = 1, 16, 64, 256, 1024 samples at batch 1 per
  backend (ms per call, host bookkeeping included), the per-sample cost (the slope between
  K = 256 and 1024) and each call's overhead over it, t(K) - K x slope (K below WaveNet's
  inner chunk of 16 pays for a whole inner chunk's begin and end);
* the Transformer: streaming tokens/s at K = 32 against its `generate`.

Run: `python -m bench.streaming_bench [--quick]` (full: about 6 minutes here).
"""

import pathlib
import sys
import tempfile
import time

import numpy as np

from bench.common import cpu_info
from keras_ar import contract

SIGNATURES = ("init_state", "prefill", "sample_step", "sample_chunk", "generate")
CHUNK_SIZES = (1, 16, 64, 256, 1024)
STREAM_CHUNK, TOKEN_CHUNK = 256, 32


def _wavenet():
    from keras_ar.models import WaveNet

    return WaveNet(num_classes=256, dilations=[2 ** i for i in range(10)],
                   residual_channels=64, skip_channels=64)


def _transformer():
    from keras_ar.models import CausalTransformer

    return CausalTransformer(vocab_size=256, num_layers=4, num_heads=4, hidden_dim=128,
                             max_length=512)


def _export(model, root, targets):
    from export import repository
    from export.onnx import export_onnx
    from export.saved_model import export_saved_model
    from export.tflite import export_tflite

    paths = {"savedmodel": root / "base" / "1"}
    export_saved_model(model, paths["savedmodel"], signatures=SIGNATURES)
    if "served" in targets:  # a TF Serving version with model.tflite beside saved_model.pb
        paths["served"] = repository.write_version(model, root / "repo", "wavenet",
                                                   tflite=True, signatures=SIGNATURES)
    if "tflite" in targets:
        paths["tflite"] = root / "tflite"
        export_tflite(model, paths["tflite"], signatures=SIGNATURES,
                      saved_model_dir=paths["savedmodel"])
    if "onnx" in targets:
        paths["onnx"] = root / "onnx"
        export_onnx(model, paths["onnx"], signatures=("init_state", "sample_chunk", "generate"),
                    check_atol=None)
    return paths


def _backends(paths):
    from serving.onnx_backend import OnnxBackend
    from serving.saved_model_backend import SavedModelBackend
    from serving.tflite_backend import TFLiteBackend

    made = {"SavedModel": SavedModelBackend(paths["savedmodel"])}
    if "tflite" in paths:
        made["TFLite"] = TFLiteBackend(paths["tflite"])
    if "onnx" in paths:
        made["ONNX"] = OnnxBackend(paths["onnx"])
    return made


def _graph_feeds(batch, steps, noise_shape, event_shape=()):
    rng = np.random.default_rng(0)
    return {contract.NOISE: rng.uniform(size=(batch, steps) + noise_shape).astype("float32"),
            contract.PROMPT: np.zeros((batch, 0) + event_shape, "int32"),
            contract.PROMPT_LENGTH: np.zeros([batch], "int32"),
            contract.TEMPERATURE: np.ones([batch], "float32"),
            contract.TOP_K: np.zeros([batch], "int32"),
            contract.TOP_P: np.ones([batch], "float32")}


def _interleaved(cases, repeats):
    """{name: best seconds} over `repeats` rounds, each case once per round (one warm-up)."""
    for fn in cases.values():
        fn()
    best = {}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best.get(name, np.inf), time.perf_counter() - start)
    return best


def _stream_vs_graph(generators, steps, batch, repeats, chunk):
    """Rows: samples/s of the graph loop and of streaming per backend, and their ratio."""
    cases = {}
    for name, generator in generators.items():
        feeds = _graph_feeds(batch, steps, generator.spec.noise_shape)
        backend = generator.backend
        cases[name, "generate"] = lambda b=backend, f=feeds: b.run(contract.GENERATE, f)
        cases[name, "stream"] = lambda g=generator: g.generate(
            steps, batch_size=batch, seed=0, chunk_size=chunk)
    best = _interleaved(cases, repeats)
    rows = []
    for name in generators:
        graph = batch * steps / best[name, "generate"]
        stream = batch * steps / best[name, "stream"]
        case = f"{name}, batch {batch}, {steps} samples"
        rows += [_row(f"{case}, in-graph generate", "samples/s", graph, "samples/s"),
                 _row(f"{case}, streaming K={chunk}", "samples/s", stream, "samples/s"),
                 _row(f"{case}, streaming K={chunk} / generate", "ratio", stream / graph,
                      "x")]
    return rows, best


def _chunk_overheads(generators, repeats):
    """`Generator.chunk` of K samples at batch 1 per backend, K held for a block of calls (a
    stream keeps its K; a new K reshapes the runtime's tensors once). The per-sample cost is
    the slope between the two largest K; a call's overhead is t(K) - K x slope."""
    rows = []
    for name, generator in generators.items():
        times = {}
        for k in CHUNK_SIZES:  # one run per K, long enough for every call of the block
            run = generator.start(k * (repeats + 2), batch_size=1, seed=0)
            times[k] = min(_interleaved({k: lambda: generator.chunk(run, k)}, repeats + 1)
                           .values())
        small, large = CHUNK_SIZES[-2:]
        slope = (times[large] - times[small]) / (large - small)
        rows.append(_row(f"{name}, batch 1, sample_chunk", "per-sample cost (slope)",
                         1e6 * slope, "us"))
        for k, seconds in times.items():
            case = f"{name}, batch 1, sample_chunk K={k}"
            rows += [_row(case, "ms per call", 1000 * seconds, "ms"),
                     _row(case, "overhead per call", 1000 * (seconds - k * slope), "ms")]
    return rows


def _wavenet_rows(root, quick, server_class):
    from serving.generator import Generator

    paths = _export(_wavenet(), root, ("tflite", "onnx", "served"))
    steps, repeats = (2048, 2) if quick else (8192, 3)
    rows = []
    backends = _backends(paths)
    generators = {name: Generator(b) for name, b in backends.items()}
    for batch in (1, 16):
        batch_steps = steps if batch == 1 else steps // 4
        subset = {k: v for k, v in generators.items() if k != "SavedModel"}
        got, best = _stream_vs_graph(subset, batch_steps, batch, repeats, STREAM_CHUNK)
        rows += got
        if batch == 1:
            rows += _chunk_overheads(generators, repeats)
    rows += _served_rows(paths, generators, server_class, root, steps, repeats)
    return rows


def _served_rows(paths, generators, server_class, root, steps, repeats):
    """Streaming over `keras-ar serve` gRPC: the SavedModel on TensorFlow, and the same
    version's model.tflite (`--prefer_tflite_model=true`), against in-process runs."""
    from serving.generator import Generator
    from serving.tf_serving_backend import TFServingBackend

    base = paths["served"].parent
    servers = {"TensorFlow": server_class(base, root / "tf.log"),
               "TFLite": server_class(base, root / "lite.log",
                                      extra_args=["--prefer_tflite_model=true"])}
    rows = []
    try:
        remote = {f"keras-ar serve gRPC ({runtime})": Generator(TFServingBackend(
            f"grpc://{server.grpc_target}/wavenet", manifest=paths["savedmodel"]))
            for runtime, server in servers.items()}
        cases = {"SavedModel in-process": generators["SavedModel"],
                 "TFLite in-process": generators["TFLite"], **remote}
        best = _interleaved({name: (lambda g=g: g.generate(steps, seed=0,
                                                           chunk_size=STREAM_CHUNK))
                             for name, g in cases.items()}, repeats)
        for name, seconds in best.items():
            rows.append(_row(f"{name}, batch 1, {steps} samples, streaming K={STREAM_CHUNK}",
                             "samples/s", steps / seconds, "samples/s"))
        for runtime, local in (("TensorFlow", "SavedModel in-process"),
                               ("TFLite", "TFLite in-process")):
            ratio = best[local] / best[f"keras-ar serve gRPC ({runtime})"]
            rows.append(_row(f"gRPC ({runtime}) / {local}, batch 1, K={STREAM_CHUNK}",
                             "ratio", ratio, "x"))
        lite = "keras-ar serve gRPC (TFLite)"
        rows += _chunk_overheads({lite: remote[lite]}, repeats)
        for generator in remote.values():
            generator.backend.close()
    finally:
        for server in servers.values():
            server.stop()
    return rows


def _transformer_rows(root, quick):
    from serving.generator import Generator

    paths = _export(_transformer(), root / "transformer", ("tflite",))
    generators = {name: Generator(b) for name, b in _backends(paths).items()}
    tokens = 128 if quick else 480
    rows, _ = _stream_vs_graph(generators, tokens, 1, 2 if quick else 3, TOKEN_CHUNK)
    return [dict(row, case="Transformer " + row["case"].replace("samples", "tokens"))
            for row in rows]


def run(quick=False):
    import keras

    from bench.serving_bench import Server

    keras.utils.set_random_seed(0)
    rows = [_row("machine", cpu_info(), 0, "")]
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        rows += _wavenet_rows(root, quick, Server)
        rows += _transformer_rows(root, quick)
    return rows


def _row(case, metric, value, unit):
    return {"benchmark": "streaming", "case": case, "metric": metric, "value": float(value),
            "unit": unit}


if __name__ == "__main__":
    print(cpu_info(), flush=True)
    for row in run(quick="--quick" in sys.argv)[1:]:
        print(f"{row['case']}: {row['metric']} {row['value']:,.4g} {row['unit']}", flush=True)
