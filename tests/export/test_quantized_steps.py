"""Quantised TFLite files run the generation protocol, not only `log_prob`.

`model_int8.tflite` (dynamic-range int8 weights) and `model_float16.tflite` hold every
exported signature. Here a WaveNet large enough that TFLite really quantises its weights
(kernels of >= 1024 elements) is exported with the step signatures; each quantised file's
`step`, `sample_step` and `sample_chunk` run from `init_state` for NUM_STEPS steps with the
float32 file's inputs, and their params, per-step NLL and samples are bounded against it.
"""

import keras
import numpy as np
import pytest

from export import verify
from export.tflite import FILES, export_tflite
from keras_ar import contract
from keras_ar.models import WaveNet

MODES = ("int8", "float16")
SIGNATURES = (contract.INIT_STATE, contract.STEP, contract.SAMPLE_STEP, contract.SAMPLE_CHUNK,
              contract.LOG_PROB)
NUM_CLASSES, BATCH, NUM_STEPS = 64, 2, 32
# Bounds a little above the errors measured on this model (max over the NUM_STEPS steps, both
# rows; "relative" is the step's max abs difference over its largest |param| in float32):
#   params (logits) max abs diff   int8 0.034 (relative 0.016)   float16 1.1e-3 (6.1e-4)
#   per-step NLL max abs diff      int8 0.022 nats               float16 8.5e-4 nats
#   sampled values that differ     int8 2 of 64                  float16 0 of 64
BOUNDS = {"int8": dict(params=0.05, relative=0.025, nll=0.03),
          "float16": dict(params=2e-3, relative=1e-3, nll=1.5e-3)}


def quantisable_model():
    keras.utils.set_random_seed(0)
    model = WaveNet(num_classes=NUM_CLASSES, dilations=[1, 2, 4], residual_channels=128,
                    skip_channels=128)
    # a trained model's logits span nats, a fresh one's ~0.03: scale the output layer so the
    # errors are measured where sampling and NLL are sensitive to them
    kernel = model.output_params.kernel
    kernel.assign(kernel * 50.0)
    return model


def held_out():
    return np.random.default_rng(3).integers(0, NUM_CLASSES, size=(8, 24)).astype("int32")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = quantisable_model()
    out = tmp_path_factory.mktemp("quantized_steps") / "tflite"
    manifest = export_tflite(model, out, quantize=MODES, signatures=SIGNATURES,
                             eval_data=held_out())
    runners = {mode: verify.tflite_runner(out / FILES[mode]) for mode in ("float32",) + MODES}
    return model, out, manifest, runners


def _state_inputs(outputs):
    return {contract.state_input_name(contract.state_key_from_name(k)): v
            for k, v in outputs.items() if k.startswith(contract.STATE_OUTPUT_PREFIX)}


def _init(run):
    return _state_inputs(run(contract.INIT_STATE,
                             {contract.BATCH_TEMPLATE: np.zeros([BATCH], "int32")}))


def _start():
    return np.full([BATCH], NUM_CLASSES, "int32")  # start_id


def _controls():
    return {contract.TEMPERATURE: np.ones([BATCH], "float32"),
            contract.TOP_K: np.zeros([BATCH], "int32"),
            contract.TOP_P: np.ones([BATCH], "float32")}


def constant_bytes(file):
    """{dtype name: bytes} of the constant tensors (weights) of a .tflite file, each buffer
    counted once (the signatures' subgraphs share them)."""
    import pathlib

    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(pathlib.Path(file).read_bytes(), 0)
    seen, out = set(), {}
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            size = model.Buffers(tensor.Buffer()).DataLength()
            if size and tensor.Buffer() not in seen:
                seen.add(tensor.Buffer())
                name = names[tensor.Type()]
                out[name] = out.get(name, 0) + size
    return out


@pytest.mark.slow
def test_quantised_files_really_hold_smaller_weights(exported):
    _, out, manifest, _ = exported
    figures = manifest["quantization"]
    print({m: {k: figures[m].get(k) for k in ("bytes", "nll", "nll_change")}
           for m in ("float32",) + MODES})
    # measured: int8 0.44x, float16 0.54x the float32 bytes (the rest: graph structure)
    assert figures["int8"]["bytes"] < 0.5 * figures["float32"]["bytes"]
    assert figures["float16"]["bytes"] < 0.6 * figures["float32"]["bytes"]
    weights = {mode: constant_bytes(out / FILES[mode]) for mode in ("float32",) + MODES}
    print(weights)
    assert set(weights["float32"]) <= {"FLOAT32", "INT32", "BOOL"}
    kernels = 3 * 2 * 128 * 256  # the dilated convolutions alone, one byte per weight
    assert weights["int8"]["INT8"] >= kernels > weights["int8"].get("FLOAT32", 0)
    assert weights["float16"]["FLOAT16"] >= 2 * kernels > weights["float16"].get("FLOAT32", 0)
    # measured relative NLL changes on the held-out rows: int8 -2.6e-4, float16 +9.5e-6
    assert abs(figures["int8"]["nll_change"]) < 1e-3
    assert abs(figures["float16"]["nll_change"]) < 5e-5


@pytest.mark.slow
def test_quantised_sample_step_follows_float32_within_bounds(exported):
    """sample_step from init_state on every file, each fed the float32 file's sample as the
    next x_prev (teacher forcing) and the same noise: params stay within the bounds."""
    _, _, _, runners = exported
    noise = np.random.default_rng(5).uniform(size=(NUM_STEPS, BATCH, 1)).astype("float32")
    states = {mode: _init(run) for mode, run in runners.items()}
    x_prev = _start()
    worst = {mode: [0.0, 0.0, 0] for mode in MODES}  # abs diff, relative, sample mismatches
    for t in range(NUM_STEPS):
        outputs = {}
        for mode, run in runners.items():
            outputs[mode] = run(contract.SAMPLE_STEP, {contract.X_PREV: x_prev,
                                                       contract.NOISE: noise[t],
                                                       **states[mode], **_controls()})
            states[mode] = _state_inputs(outputs[mode])
        want = outputs["float32"][contract.PARAMS].astype(np.float64)
        for mode in MODES:
            diff = float(np.max(np.abs(outputs[mode][contract.PARAMS] - want)))
            worst[mode][0] = max(worst[mode][0], diff)
            worst[mode][1] = max(worst[mode][1], diff / float(np.max(np.abs(want))))
            worst[mode][2] += int(np.sum(outputs[mode][contract.X_NEXT]
                                         != outputs["float32"][contract.X_NEXT]))
        x_prev = outputs["float32"][contract.X_NEXT]
    print("sample_step worst [abs, relative, mismatched samples]:", worst)
    for mode in MODES:
        assert worst[mode][0] <= BOUNDS[mode]["params"], (mode, worst[mode])
        assert worst[mode][1] <= BOUNDS[mode]["relative"], (mode, worst[mode])
        assert worst[mode][2] <= BATCH * NUM_STEPS // 8, (mode, worst[mode])


@pytest.mark.slow
def test_quantised_step_scores_a_fixed_sequence_like_float32(exported):
    """step over a fixed sequence: per-step NLL -log softmax(params)[x_t] of each quantised
    file within the bound of the float32 file's, whose NLL is the Keras model's."""
    model, _, _, runners = exported
    x = np.random.default_rng(6).integers(0, NUM_CLASSES, size=(BATCH, NUM_STEPS))
    x = x.astype("int32")
    nll = {}
    for mode, run in runners.items():
        state, x_prev, steps = _init(run), _start(), []
        for t in range(NUM_STEPS):
            out = run(contract.STEP, {contract.X_PREV: x_prev, **state})
            logits = out[contract.PARAMS].astype(np.float64)
            logits -= logits.max(-1, keepdims=True)
            log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
            steps.append(-log_p[np.arange(BATCH), x[:, t]])
            state, x_prev = _state_inputs(out), x[:, t]
        nll[mode] = np.stack(steps, 1)
    np.testing.assert_allclose(nll["float32"].sum(1), -np.asarray(model.log_prob(x)),
                               rtol=1e-5, atol=1e-4)
    for mode in MODES:
        diff = float(np.max(np.abs(nll[mode] - nll["float32"])))
        print(f"{mode}: per-step NLL max diff {diff:.3g} nats")
        assert diff <= BOUNDS[mode]["nll"], (mode, diff)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_quantised_sample_chunk_equals_its_own_sample_steps(exported, mode):
    """One NUM_STEPS chunk from init_state on a quantised file gives the samples of that
    file's own sample_step loop from the same noise (the chunk runs the quantised step)."""
    _, _, _, runners = exported
    run = runners[mode]
    noise = np.random.default_rng(7).uniform(size=(BATCH, NUM_STEPS, 1)).astype("float32")
    state = _init(run)
    chunk = run(contract.SAMPLE_CHUNK, {
        contract.X_PREV: _start(), contract.NOISE: noise, **state, **_controls(),
        contract.PROMPT: np.zeros([BATCH, 0], "int32"),
        contract.PROMPT_LENGTH: np.zeros([BATCH], "int32")})
    x_prev, samples = _start(), []
    for t in range(NUM_STEPS):
        out = run(contract.SAMPLE_STEP, {contract.X_PREV: x_prev, contract.NOISE: noise[:, t],
                                         **state, **_controls()})
        state, x_prev = _state_inputs(out), out[contract.X_NEXT]
        samples.append(x_prev)
    np.testing.assert_array_equal(chunk[contract.X], np.stack(samples, 1))
    np.testing.assert_array_equal(chunk[contract.LENGTHS], [NUM_STEPS] * BATCH)
