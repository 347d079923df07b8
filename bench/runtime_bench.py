"""Per-step latency and whole-sequence generation throughput on every runtime.

A WaveNet (10 layers x 64 channels, 256-way mu-law head) is exported with `export_all` to
SavedModel, TFLite (float32, dynamic-range int8, float16) and ONNX; then, in one run:

* `sample_step` latency at batch 1 and 16 on Keras (`tf.function` over `model.sample_step`),
  the loaded SavedModel signature, TFLite (XNNPACK, the LiteRT default) and onnxruntime,
  reported as ratios to the Keras step;
* the exported `generate` signature (the whole loop in the graph: TFLite WHILE, ONNX Loop)
  for `num_steps` samples at batch 1 and 16, in samples/s (all rows);
* artifact sizes per target and quantisation mode.
"""

import pathlib
import tempfile

import numpy as np
import tensorflow as tf

from bench.common import best_time
from keras_ar import contract
from keras_ar.models import WaveNet


def _model():
    return WaveNet(num_classes=256, dilations=[2 ** i for i in range(10)],
                   residual_channels=64, skip_channels=64)


def _runners(out):
    from export import verify

    runners = verify.runners_for(out)
    for mode in ("int8", "float16"):
        file = out / "tflite" / f"model_{mode}.tflite"
        if file.exists():
            runners[f"tflite {mode}"] = verify.tflite_runner(file)
    return runners


def _keras_sample_step(model):
    fn = tf.function(lambda x, s, n, t, k, p: model.sample_step(x, s, n, t, k, p))

    def run(feeds):
        state = {contract.state_key_from_name(k): v for k, v in feeds.items()
                 if k.startswith(contract.STATE_INPUT_PREFIX)}
        return fn(feeds[contract.X_PREV], state, feeds[contract.NOISE],
                  feeds[contract.TEMPERATURE], feeds[contract.TOP_K], feeds[contract.TOP_P])

    return run


def run(quick=False):
    from export import export_all, verify

    model = _model()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "export"
        export_all(model, out, quantize=("int8", "float16"), verify_parity=False)
        rows += _size_rows(out)
        runners = _runners(out)
        calls = 20 if quick else 200
        for batch in (1, 16):
            feeds = verify.example_feeds(model, [contract.SAMPLE_STEP], batch=batch)
            feeds = feeds[contract.SAMPLE_STEP]
            keras_step = _keras_sample_step(model)
            base = best_time(lambda: [keras_step(feeds) for _ in range(calls)]) / calls
            rows.append(_row(f"sample_step, batch {batch}, Keras tf.function", "ms per step",
                             1000 * base, "ms", runtime="Keras tf.function", batch=batch))
            for name, runner in runners.items():
                seconds = best_time(
                    lambda: [runner(contract.SAMPLE_STEP, feeds) for _ in range(calls)]) / calls
                case = f"sample_step, batch {batch}, {name}"
                rows.append(_row(case, "ms per step", 1000 * seconds, "ms", runtime=name,
                                 batch=batch))
                rows.append(_row(case, "speed-up vs Keras step", base / seconds, "x"))
            rows += _generate_rows(model, runners, batch, 200 if quick else 2000)
    return rows


def _generate_rows(model, runners, batch, num_steps):
    rng = np.random.default_rng(0)
    feeds = {contract.NOISE: rng.uniform(size=(batch, num_steps, 1)).astype("float32"),
             contract.PROMPT: np.zeros((batch, num_steps), "int32"),  # no prompt
             contract.PROMPT_LENGTH: np.zeros([batch], "int32"),
             contract.TEMPERATURE: np.ones([batch], "float32"),
             contract.TOP_K: np.zeros([batch], "int32"),
             contract.TOP_P: np.ones([batch], "float32")}
    rows = []
    for name, runner in runners.items():
        seconds = best_time(lambda: runner(contract.GENERATE, feeds), repeats=1)
        rows.append(_row(f"generate signature, batch {batch}, {num_steps} samples, {name}",
                         "samples/s (all rows)", batch * num_steps / seconds, "samples/s",
                         runtime=name, batch=batch))
    return rows


def _size_rows(out):
    rows = []
    for file in sorted(out.rglob("*")):
        if file.suffix in (".tflite", ".onnx") or file.name == "saved_model.pb":
            rows.append(_row(f"artifact size {file.relative_to(out)}", "size",
                             file.stat().st_size / 1024, "kB"))
    variables = out / "savedmodel" / "variables"
    if variables.exists():
        total = sum(f.stat().st_size for f in variables.rglob("*") if f.is_file())
        rows.append(_row("artifact size savedmodel/variables", "size", total / 1024, "kB"))
    return rows


def _row(case, metric, value, unit, **fields):
    """A result row; `fields` (runtime, batch) are what `bench/plots.py` reads."""
    return {"benchmark": "runtimes", "case": case, "metric": metric, "value": float(value),
            "unit": unit, **fields}
