"""One Generator, five backends: a seed gives identical samples everywhere."""

import numpy as np
import pytest

from serving.generation_run import GenerationRun
from serving.generator import Generator
from serving.onnx_backend import OnnxBackend
from serving.saved_model_backend import SavedModelBackend
from serving.tf_serving_backend import TFServingBackend
from serving.tflite_backend import TFLiteBackend

STEPS, BATCH, SEED = 24, 3, 7


@pytest.fixture(scope="module")
def backends(model_root, wavenet_exports, server):
    saved = model_root / "wavenet" / "1"
    made = {"savedmodel": SavedModelBackend(saved),
            "tflite": TFLiteBackend(wavenet_exports["tflite"]),
            "onnx": OnnxBackend(wavenet_exports["onnx"]),
            "rest": TFServingBackend(f"{server.rest}/v1/models/wavenet_all/versions/1",
                                     manifest=saved),
            "grpc": TFServingBackend(f"grpc://{server.grpc_target}/wavenet_all/versions/1",
                                     manifest=saved)}
    yield made
    for backend in made.values():
        backend.close()


@pytest.fixture(scope="module")
def reference(backends):
    """One `sample_step` per sample (chunk_size=1): every chunked run must give these."""
    return Generator(backends["savedmodel"], chunk_size=1).generate(
        STEPS, batch_size=BATCH, seed=SEED)


@pytest.mark.parametrize("name", ["savedmodel", "tflite", "onnx", "rest", "grpc"])
@pytest.mark.parametrize("chunk_size", [None, 7, 1])
def test_same_seed_same_samples_on_every_backend(backends, reference, name, chunk_size):
    generator = Generator(backends[name], chunk_size=chunk_size)
    out = generator.generate(STEPS, batch_size=BATCH, seed=SEED)
    np.testing.assert_array_equal(out["x"], reference["x"])
    assert out["lengths"].tolist() == [STEPS] * BATCH
    if chunk_size is not None:
        return
    graph = generator.generate(STEPS, batch_size=BATCH, seed=SEED, use_graph_loop=True)
    np.testing.assert_array_equal(graph["x"], reference["x"])


@pytest.mark.parametrize("name", ["savedmodel", "tflite", "onnx", "grpc"])
def test_prompt_controls_stop_and_lengths_agree(backends, name):
    prompt = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    options = dict(prompt=prompt, temperature=[0.7, 1.3], top_k=[4, 0], top_p=[1.0, 0.8],
                   stop_token=5, lengths=[9, 12])
    expected = Generator(backends["savedmodel"], chunk_size=1).generate(16, seed=3, **options)
    out = Generator(backends[name], chunk_size=5).generate(16, seed=3, **options)
    np.testing.assert_array_equal(out["x"], expected["x"])
    np.testing.assert_array_equal(out["lengths"], expected["lengths"])
    graph = Generator(backends[name]).generate(16, seed=3, use_graph_loop=True, **options)
    np.testing.assert_array_equal(graph["x"], expected["x"])  # prompt through `generate`
    np.testing.assert_array_equal(graph["lengths"], expected["lengths"])
    for row, length in enumerate(out["lengths"]):
        assert length <= options["lengths"][row]
        assert 5 not in out["x"][row, :length]
        assert np.all(out["x"][row, length:] == 5)


def test_graph_loop_applies_stops_like_the_step_loop(backends):
    generator = Generator(backends["onnx"])
    options = dict(stop_token=2, lengths=[20, 6, 15])
    step = generator.generate(STEPS, batch_size=BATCH, seed=11, **options)
    graph = generator.generate(STEPS, batch_size=BATCH, seed=11, use_graph_loop=True,
                               **options)
    np.testing.assert_array_equal(step["x"], graph["x"])
    np.testing.assert_array_equal(step["lengths"], graph["lengths"])


@pytest.mark.parametrize("chunk_size, starts", [(1, list(range(STEPS))),
                                                (10, [0, 10, 20])])
def test_streaming_yields_every_chunk(backends, reference, chunk_size, starts):
    chunks = list(Generator(backends["tflite"], chunk_size=chunk_size).stream(
        STEPS, batch_size=BATCH, seed=SEED))
    assert [t for t, _ in chunks] == starts
    np.testing.assert_array_equal(np.concatenate([x for _, x in chunks], 1), reference["x"])
    seen = []
    Generator(backends["tflite"], chunk_size=2).generate(
        5, seed=1, callback=lambda t, x, run: seen.append((t, x.shape[1])))
    assert seen == [(0, 2), (2, 2), (4, 1)]


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_pause_and_resume_from_disk(backends, reference, tmp_path, chunk_size):
    """Pause inside a chunk (10 is no multiple of 4) and resume on another backend."""
    generator = Generator(backends["savedmodel"], chunk_size=chunk_size)
    run = generator.start(STEPS, batch_size=BATCH, seed=SEED)
    generator.finish(run, max_steps=10)
    assert run.t == 10 and not run.finished
    run.save(tmp_path / "run.npz")
    resumed = Generator(backends["onnx"], chunk_size=7).resume(tmp_path / "run.npz")
    np.testing.assert_array_equal(resumed["x"], reference["x"])
    loaded = GenerationRun.load(tmp_path / "run.npz")
    assert loaded.t == 10 and set(loaded.state) == set(run.state)
