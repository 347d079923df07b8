"""Where the exported `generate` loop spends its time, and what the chunked loop saves.

WaveNets with the same ops per step (10 layers x 64 channels, 256-way head) are exported to
TFLite (`generate` only) and timed interleaved in one process at batch 1 and 16, TFLite
threads 1 and 2:

* dilations 1..512, `generation_chunk` 0: the plain loop; every step moves every FIFO
  (1,023 positions, 262 kB of state per row);
* dilations 1..512, inner chunks of 16, 32 and 64 steps (`keras_ar/models/wavenet_chunks.py`;
  32 is the default): the large FIFOs stay out of the inner loop;
* ten dilation-1 layers: 10 positions (2.6 kB per row): the ops alone, a floor for the rest;
* dilations 1..512, chunks of 32, exported with a fixed batch (`export_tflite(...,
  batch_size=B)`, once per batch size): static shapes all through the loop bodies.

Run: `python -m bench.generate_loop_bench [--quick]`.
"""

import pathlib
import sys
import tempfile
import time

import numpy as np

from keras_ar import contract

DILATIONS = [2 ** i for i in range(10)]
CASES = {"dilations 1..512, plain loop": (DILATIONS, 0),
         "dilations 1..512, chunks of 16": (DILATIONS, 16),
         "dilations 1..512, chunks of 32": (DILATIONS, 32),
         "dilations 1..512, chunks of 64": (DILATIONS, 64),
         "dilations 1 x10 (ops only)": ([1] * 10, 0)}
ONNX_CASES = ("dilations 1..512, plain loop", "dilations 1..512, chunks of 32")
FIXED_CASE = "dilations 1..512, chunks of 32, fixed batch"
BATCHES = (1, 16)


def _feeds(batch, steps):
    rng = np.random.default_rng(0)
    return {contract.NOISE: rng.uniform(size=(batch, steps, 1)).astype("float32"),
            contract.PROMPT: np.zeros((batch, steps), "int32"),
            contract.PROMPT_LENGTH: np.zeros([batch], "int32"),
            contract.TEMPERATURE: np.ones([batch], "float32"),
            contract.TOP_K: np.zeros([batch], "int32"),
            contract.TOP_P: np.ones([batch], "float32")}


def _runners(tmp):
    from ai_edge_litert.interpreter import Interpreter

    from export.tflite import export_tflite
    from keras_ar.models import WaveNet

    runners = {}
    for n, (label, (dilations, chunk)) in enumerate(CASES.items()):
        model = WaveNet(num_classes=256, dilations=dilations, residual_channels=64,
                        skip_channels=64, generation_chunk=chunk)
        out = pathlib.Path(tmp) / f"case{n}"
        export_tflite(model, out / "tflite", signatures=(contract.GENERATE,))
        for threads in (1, 2):
            runners[("TFLite", label, threads, None)] = _tflite_runner(
                Interpreter, out / "tflite", threads)
        if label in ONNX_CASES:
            runners[("onnxruntime", label, 1, None)] = _onnx_runner(model, out / "onnx")
        if label == "dilations 1..512, chunks of 32":
            for batch in BATCHES:
                export_tflite(model, out / f"tflite_b{batch}", signatures=(contract.GENERATE,),
                              batch_size=batch)
                for threads in (1, 2):
                    runners[("TFLite", FIXED_CASE, threads, batch)] = _tflite_runner(
                        Interpreter, out / f"tflite_b{batch}", threads)
    return runners


def _tflite_runner(interpreter_class, directory, threads):
    interpreter = interpreter_class(model_path=str(directory / "model.tflite"),
                                    num_threads=threads)
    return interpreter.get_signature_runner(contract.GENERATE)


def _onnx_runner(model, out):
    import onnxruntime

    from export.onnx import export_onnx

    export_onnx(model, out, signatures=(contract.GENERATE,), check_atol=None)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(out / f"{contract.GENERATE}.onnx"), options,
                                           providers=["CPUExecutionProvider"])
    return lambda **feeds: session.run(None, feeds)


def run(quick=False):
    steps, repeats = (1024, 2) if quick else (2048, 3)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runners = _runners(tmp)
        for batch in BATCHES:
            feeds = _feeds(batch, steps)
            best = {}
            usable = {key: runner for key, runner in runners.items()
                      if key[3] in (None, batch)}
            for runner in usable.values():
                runner(**feeds)  # warm-up
            for _ in range(repeats):  # interleaved: every case sees the same load
                for key, runner in usable.items():
                    start = time.perf_counter()
                    runner(**feeds)
                    best[key] = min(best.get(key, np.inf), time.perf_counter() - start)
            for (runtime, label, threads, _), seconds in best.items():
                rows.append({"benchmark": "generate_loop",
                             "case": f"{runtime} generate, batch {batch}, {label}, "
                                     f"threads {threads}, {steps} samples",
                             "metric": "samples/s (all rows)",
                             "value": batch * steps / seconds, "unit": "samples/s"})
    return rows


if __name__ == "__main__":
    from bench.common import cpu_info

    print(cpu_info(), flush=True)
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['case']}: {row['value']:,.0f} {row['unit']}")
