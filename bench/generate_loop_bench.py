"""Where the exported `generate` loop spends its time: state size vs ops per step (issue 3).

Two WaveNets with the same ops per step (10 layers x 64 channels, 256-way head) are exported
to TFLite (`generate` only) and timed interleaved in one process at batch 1 and 16, TFLite
threads 1 and 2:

* dilations 1..512: the real model, FIFOs of 1,023 positions (262 kB of state per row);
* ten dilation-1 layers: 10 positions (2.6 kB per row).

The ratio between the two isolates the cost of moving the state each step from the cost of
the ops. Run: `python -m bench.generate_loop_bench [--quick]`.
"""

import pathlib
import sys
import tempfile
import time

import numpy as np

from keras_ar import contract

CASES = {"dilations 1..512": [2 ** i for i in range(10)], "dilations 1 x10": [1] * 10}


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
    for label, dilations in CASES.items():
        model = WaveNet(num_classes=256, dilations=dilations, residual_channels=64,
                        skip_channels=64)
        out = pathlib.Path(tmp) / label.replace(" ", "_").replace(".", "")
        export_tflite(model, out, signatures=(contract.GENERATE,))
        for threads in (1, 2):
            interpreter = Interpreter(model_path=str(out / "model.tflite"), num_threads=threads)
            runners[(label, threads)] = interpreter.get_signature_runner(contract.GENERATE)
    return runners


def run(quick=False):
    steps, repeats = (100, 2) if quick else (500, 4)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runners = _runners(tmp)
        for batch in (1, 16):
            feeds = _feeds(batch, steps)
            best = {}
            for key, runner in runners.items():
                runner(**feeds)  # warm-up
            for _ in range(repeats):  # interleaved: every case sees the same load
                for key, runner in runners.items():
                    start = time.perf_counter()
                    runner(**feeds)
                    best[key] = min(best.get(key, np.inf), time.perf_counter() - start)
            for (label, threads), seconds in best.items():
                rows.append({"benchmark": "generate_loop",
                             "case": f"TFLite generate, batch {batch}, {label}, "
                                     f"threads {threads}, {steps} samples",
                             "metric": "samples/s (all rows)",
                             "value": batch * steps / seconds, "unit": "samples/s"})
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['case']}: {row['value']:,.0f} {row['unit']}")
