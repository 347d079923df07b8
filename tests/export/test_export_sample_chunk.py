"""The exported `sample_chunk` with a stop token baked in (a CausalTransformer), on every
target: one chunk of K == K Keras `sample_step`s (stops included); and the Generator on an
artifact without `sample_chunk` (an older export) steps with `sample_step` and gives the
same samples as chunks."""

import numpy as np
import pytest

from export import verify
from export.onnx import export_onnx
from export.saved_model import export_saved_model
from export.tflite import export_tflite
from keras_ar import contract, testing
from keras_ar.models import CausalTransformer
from serving.generator import Generator
from serving.saved_model_backend import SavedModelBackend
from serving.tflite_backend import TFLiteBackend

STOP = 3
SIGNATURES = (contract.INIT_STATE, contract.SAMPLE_CHUNK)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    model = CausalTransformer(vocab_size=6, num_layers=1, num_heads=2, hidden_dim=8,
                              max_length=72)
    out = tmp_path_factory.mktemp("chunk_stop")
    export_saved_model(model, out / "savedmodel", signatures=SIGNATURES, stop_token=STOP)
    export_tflite(model, out / "tflite", signatures=SIGNATURES, stop_token=STOP)
    export_onnx(model, out / "onnx", signatures=SIGNATURES, stop_token=STOP)
    return model, out


@pytest.mark.slow
@pytest.mark.parametrize("steps", [1, 7, 64])
def test_chunk_with_a_stop_token_on_every_target(exported, steps):
    model, out = exported
    batch = 3
    rng = np.random.default_rng(steps)
    noise = rng.uniform(size=(batch, steps, 1)).astype("float32")
    controls = (np.ones(batch, "float32"), np.zeros(batch, "int32"), np.ones(batch, "float32"))
    state = model.init_state(batch)
    start = np.full(batch, model.start_id, "int32")
    ref_x, ref_state, ref_lengths, ref_done = testing.steps_like_chunk(
        model, start, dict(state), noise, controls, {}, stop_token=STOP)
    if steps == 64:
        assert ref_done.any()  # a row stops inside the chunk: the case is exercised
    feeds = {contract.X_PREV: start, contract.NOISE: noise,
             contract.TEMPERATURE: controls[0], contract.TOP_K: controls[1],
             contract.TOP_P: controls[2], contract.PROMPT: np.zeros((batch, 1), "int32"),
             contract.PROMPT_LENGTH: np.zeros(batch, "int32"),
             **{contract.state_input_name(k): np.asarray(v) for k, v in state.items()}}
    for target, run in verify.runners_for(out).items():
        got = run(contract.SAMPLE_CHUNK, feeds)
        np.testing.assert_array_equal(got[contract.X], ref_x, err_msg=target)
        np.testing.assert_array_equal(got[contract.LENGTHS], ref_lengths, err_msg=target)
        np.testing.assert_array_equal(got[contract.STOP], ref_done, err_msg=target)
        for key, value in ref_state.items():
            np.testing.assert_allclose(got[contract.state_output_name(key)], value,
                                       atol=1e-5, err_msg=f"{target} {key}")


@pytest.mark.slow
def test_an_artifact_without_sample_chunk_steps(exported, tmp_path):
    model, out = exported
    old = export_tflite(model, tmp_path / "old", signatures=(
        contract.INIT_STATE, contract.SAMPLE_STEP), stop_token=STOP)
    assert contract.SAMPLE_CHUNK not in old["signatures"]
    backend = TFLiteBackend(tmp_path / "old")
    stepped = Generator(backend, chunk_size=16)
    assert not backend.has(contract.SAMPLE_CHUNK)
    a = stepped.generate(20, batch_size=2, seed=4, stop_token=STOP)
    b = Generator(SavedModelBackend(out / "savedmodel"), chunk_size=16).generate(
        20, batch_size=2, seed=4, stop_token=STOP)
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["lengths"], b["lengths"])
