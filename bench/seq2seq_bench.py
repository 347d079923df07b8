"""Sequence-to-sequence decoding speed: ByteNet against an encoder-decoder Transformer.

Two untrained models of about equal parameter counts (`SETTINGS`: the rows report both
counts) are exported to TFLite and ONNX (the `generate` signature only: encoder and the whole
greedy loop in one call, temperature 0, a fixed number of steps, no stop token) and run on
one thread each (`serving.tflite_backend`, `serving.onnx_backend`):

* greedy decode tokens/s (all rows) at batch 1 and 32, a source of max_source_length
  characters and its target by ByteNet's unfolding rule, T = floor(a |s|) + b;
* decode time against the source length |s| (batch 1), the target T(|s|) by the same rule
  for both models. A ByteNet step costs the same at every position (its decoder is a stack
  of causal convolutions over FIFOs), so its decode time grows linearly with T.

Every case is timed interleaved with the others (best of `repeats`), so both models see the
same load. Run: `keras-ar bench --only seq2seq [--quick]` or `python -m bench.seq2seq_bench`.
"""

import pathlib
import sys
import tempfile
import time

import numpy as np

from keras_ar import contract

#: full: ByteNet 1.55M and the Transformer 1.52M weights; quick: 251k and 255k, half the source
#: (exporting the larger models takes minutes), fewer lengths and repeats
FULL = dict(max_source_length=128, channels=124, encoder_dilations=[1, 2, 4, 8, 16, 32, 64],
            decoder_dilations=[1, 2, 4, 8, 16, 32], hidden_dim=128, encoder_layers=2,
            num_layers=4, heads=4, vocab=64, a=1.2, b=4,
            source_lengths=(8, 16, 32, 64, 128), batches=(1, 32), repeats=5)
QUICK = dict(FULL, max_source_length=64, channels=56, encoder_dilations=[1, 2, 4, 8, 16, 32],
             decoder_dilations=[1, 2, 4, 8], hidden_dim=64, encoder_layers=2, num_layers=2,
             heads=2, source_lengths=(8, 16, 32, 64), repeats=3)
SETTINGS = {"full": FULL, "quick": QUICK}
MODELS = ("ByteNet", "EncoderDecoderTransformer")
RUNTIMES = ("TFLite", "onnxruntime")


def build(settings):
    """{name: model} for the two families at `settings`' sizes."""
    import keras

    from keras_ar.models import ByteNet, EncoderDecoderTransformer

    s = settings
    keras.utils.set_random_seed(0)
    byte_net = ByteNet(source_vocab_size=s["vocab"], target_vocab_size=s["vocab"],
                       max_source_length=s["max_source_length"], a=s["a"], b=s["b"],
                       encoder_dilations=s["encoder_dilations"],
                       decoder_dilations=s["decoder_dilations"], channels=s["channels"])
    transformer = EncoderDecoderTransformer(
        source_vocab_size=s["vocab"], target_vocab_size=s["vocab"],
        max_source_length=s["max_source_length"], encoder_layers=s["encoder_layers"],
        num_layers=s["num_layers"], num_heads=s["heads"], hidden_dim=s["hidden_dim"],
        max_length=byte_net.max_length)
    return {"ByteNet": byte_net, "EncoderDecoderTransformer": transformer}


def backends(models, tmp):
    """{(model, runtime): backend} running each model's exported `generate`."""
    from export.onnx import export_onnx
    from export.tflite import export_tflite
    from serving.onnx_backend import OnnxBackend
    from serving.tflite_backend import TFLiteBackend

    out = {}
    for name, model in models.items():
        path = pathlib.Path(tmp) / name
        export_tflite(model, path / "tflite", signatures=(contract.GENERATE,))
        out[name, "TFLite"] = TFLiteBackend(path / "tflite")
        export_onnx(model, path / "onnx", signatures=(contract.GENERATE,), check_atol=None)
        out[name, "onnxruntime"] = OnnxBackend(path / "onnx")
    return out


def feeds(settings, batch, source_length, steps):
    """Greedy `generate` feeds: sources of `source_length` ids (then pads), `steps`
    target positions, temperature 0."""
    rng = np.random.default_rng(source_length)
    vocab, width = settings["vocab"], settings["max_source_length"]
    source = np.full((batch, width), vocab, np.int32)
    source[:, :source_length] = rng.integers(0, vocab, (batch, source_length))
    return {contract.NOISE: rng.random((batch, steps, 1), dtype=np.float32),
            contract.PROMPT: np.zeros((batch, steps), np.int32),
            contract.PROMPT_LENGTH: np.zeros(batch, np.int32),
            contract.TEMPERATURE: np.zeros(batch, np.float32),
            contract.TOP_K: np.zeros(batch, np.int32),
            contract.TOP_P: np.ones(batch, np.float32),
            contract.LOCAL_CONDITION: source}


def interleaved(cases, repeats):
    """{key: best seconds} of `cases` ({key: fn}), timed round-robin after one warm-up."""
    for fn in cases.values():
        fn()
    best = {}
    for _ in range(repeats):
        for key, fn in cases.items():
            start = time.perf_counter()
            fn()
            best[key] = min(best.get(key, np.inf), time.perf_counter() - start)
    return best


def _call(backend, feed):
    return lambda: backend.run(contract.GENERATE, feed)


def run(quick=False, settings=None):
    """The benchmark's rows (see the module docstring); `settings` overrides the sizes."""
    s = settings or SETTINGS["quick" if quick else "full"]
    models = build(s)
    rows = [{"benchmark": "seq2seq", "case": f"{name} parameters", "metric": "parameters",
             "value": float(model.count_params()), "unit": "weights", "model": name}
            for name, model in models.items()]
    width = s["max_source_length"]
    with tempfile.TemporaryDirectory() as tmp:
        made = backends(models, tmp)
        steps = contract.unfolded_length(s["a"], s["b"], width)
        for batch in s["batches"]:
            feed = feeds(s, batch, width, steps)
            best = interleaved({key: _call(backend, feed) for key, backend in made.items()},
                               s["repeats"])
            for (name, runtime), seconds in best.items():
                rows.append({"benchmark": "seq2seq",
                             "case": f"{name} {runtime} greedy generate, batch {batch}, "
                                     f"source {width}, target {steps}",
                             "metric": "tokens/s (all rows)",
                             "value": batch * steps / seconds, "unit": "tokens/s",
                             "model": name, "runtime": runtime, "batch": batch})
        rows += length_rows(s, made)
        for backend in made.values():
            backend.close()
    return rows


def length_rows(settings, made):
    """ms per batch-1 decode at each source length (twice the repeats: these are short),
    and per model and runtime the least-squares line ms = c + m T over the target lengths."""
    a, b = settings["a"], settings["b"]
    cases = {}
    for n in settings["source_lengths"]:
        feed = feeds(settings, 1, n, contract.unfolded_length(a, b, n))
        cases.update({(key, n): _call(backend, feed) for key, backend in made.items()})
    rows, points = [], {}
    for ((name, runtime), n), seconds in interleaved(cases, 2 * settings["repeats"]).items():
        target = contract.unfolded_length(a, b, n)
        points.setdefault((name, runtime), []).append((target, 1000 * seconds))
        rows.append({"benchmark": "seq2seq",
                     "case": f"{name} {runtime}, batch 1, source {n}, target {target}",
                     "metric": "ms per decode", "value": 1000 * seconds, "unit": "ms",
                     "model": name, "runtime": runtime, "source_length": n,
                     "target_length": target})
    for (name, runtime), pairs in points.items():
        targets, ms = np.array(pairs, np.float64).T
        slope, intercept = np.polyfit(targets, ms, 1)
        residual = ms - (intercept + slope * targets)
        r2 = 1 - float(residual @ residual) / max(float(((ms - ms.mean()) ** 2).sum()), 1e-12)
        case = f"{name} {runtime}, batch 1, ms = c + m T fit over T"
        rows += [{"benchmark": "seq2seq", "case": case, "metric": "m: ms per target position",
                  "value": float(slope), "unit": "ms", "model": name, "runtime": runtime},
                 {"benchmark": "seq2seq", "case": case, "metric": "c: fixed ms (encoder, setup)",
                  "value": float(intercept), "unit": "ms", "model": name, "runtime": runtime},
                 {"benchmark": "seq2seq", "case": case, "metric": "R^2 of the line",
                  "value": r2, "unit": "", "model": name, "runtime": runtime}]
    return rows


if __name__ == "__main__":
    from bench.common import cpu_info

    print(cpu_info(), flush=True)
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['case']}: {row['value']:,.4g} {row['unit']}")
