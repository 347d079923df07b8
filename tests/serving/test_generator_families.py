"""The Generator on other families: a CausalTransformer (prompt, stop token, per-row
lengths), a PixelCNN (images and a PNG grid) and a conditioned WaveNet (global ids and
local frames). A seed gives the same samples on in-process SavedModel, TFLite, ONNX and a
TF Serving-compatible server (REST and gRPC), and the same as the Keras model's
`generate_from_noise` on the noise the Generator draws.

Exports are tiny and shared by the module; TFLite and ONNX conversions happen only when a
test asks for them (those tests are marked slow).
"""

import numpy as np
import pytest

from pipelines import cli
from serving import writers
from serving.generator import Generator, noise_for
from serving.onnx_backend import OnnxBackend
from serving.saved_model_backend import SavedModelBackend
from serving.tf_serving_backend import TFServingBackend
from serving.tflite_backend import TFLiteBackend
from tests.serving.conftest import ServerProcess
from tests.serving.test_writers_cli import _read_png

SLOW = pytest.mark.slow
#: what the chunked and in-graph loops below run (no `sample_step`: chunks serve every run),
#: exported to every backend
CHUNKED = ("init_state", "prefill", "sample_chunk", "generate")
NO_PREFILL = ("init_state", "sample_chunk", "generate")


def _transformer():
    from keras_ar.models import CausalTransformer

    return CausalTransformer(vocab_size=12, num_layers=1, num_heads=2, hidden_dim=16,
                             max_length=24)


def _pixel_cnn():
    from keras_ar.models import PixelCNN

    return PixelCNN(image_shape=(4, 4, 1), num_levels=4, num_layers=1, filters=8,
                    first_kernel_size=3)


def _conditioned_wavenet():
    from keras_ar.models import WaveNet

    return WaveNet(num_classes=16, dilations=[1, 2], residual_channels=8, skip_channels=8,
                   num_global_classes=3, local_condition_dim=2, local_hop=4)


# name: (factory, signatures): the PixelCNN tests use no prompt, so no prefill there.
FAMILIES = {"transformer": (_transformer, CHUNKED), "pixelcnn": (_pixel_cnn, NO_PREFILL),
            "wavenet_cond": (_conditioned_wavenet, CHUNKED)}


@pytest.fixture(scope="module")
def models():
    import keras

    made = {}
    for name, (factory, _) in FAMILIES.items():
        keras.utils.set_random_seed(0)
        made[name] = factory()
    return made


@pytest.fixture(scope="module")
def family_root(models, tmp_path_factory):
    """`<root>/<name>/1`: a SavedModel per family (its signatures), a TF Serving base."""
    from export.saved_model import export_saved_model

    root = tmp_path_factory.mktemp("families")
    for name, model in models.items():
        export_saved_model(model, root / name / "1", signatures=FAMILIES[name][1])
    return root


@pytest.fixture(scope="module")
def family_server(family_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("family_server")
    config = work / "models.config"
    entries = "\n".join(f'  config {{ name: "{name}" base_path: "{family_root / name}" }}'
                        for name in FAMILIES)
    config.write_text(f"model_config_list {{\n{entries}\n}}\n")
    proc = ServerProcess([f"--model_config_file={config}"], work / "server.log")
    yield proc
    proc.stop()


class Backends:
    """Backends per (family, kind), made (and converted to TFLite/ONNX) on first use."""

    def __init__(self, models, root, request):
        self.models, self.root, self.request = models, root, request
        self._made = {}

    def __call__(self, name, kind):
        if (name, kind) not in self._made:
            self._made[name, kind] = self._make(name, kind)
        return self._made[name, kind]

    def _make(self, name, kind):
        saved = self.root / name / "1"
        if kind == "savedmodel":
            return SavedModelBackend(saved)
        if kind == "tflite":
            from export.tflite import export_tflite

            path = self.root / "tflite" / name
            export_tflite(self.models[name], path, signatures=FAMILIES[name][1],
                          saved_model_dir=saved)
            return TFLiteBackend(path)
        if kind == "onnx":
            from export.onnx import export_onnx

            path = self.root / "onnx" / name
            # check_atol=None: the sample comparisons below are the parity check
            export_onnx(self.models[name], path, signatures=FAMILIES[name][1],
                        check_atol=None)
            return OnnxBackend(path)
        server = self.request.getfixturevalue("family_server")
        url = (f"{server.rest}/v1/models/{name}" if kind == "rest"
               else f"grpc://{server.grpc_target}/{name}")
        return TFServingBackend(url, manifest=saved)

    def close(self):
        for backend in self._made.values():
            backend.close()


@pytest.fixture(scope="module")
def backends(models, family_root, request):
    made = Backends(models, family_root, request)
    yield made
    made.close()


BACKENDS = ["savedmodel", pytest.param("tflite", marks=SLOW),
            pytest.param("onnx", marks=SLOW), "rest", "grpc"]


def _keras(model, seed, batch, steps, noise_shape, **options):
    """The Keras model's own loop on the Generator's noise for `seed`."""
    noise = noise_for(seed, batch, steps, noise_shape)
    out = model.generate_from_noise(noise, **options)
    return {k: np.asarray(v) for k, v in out.items()}


# ------------------------------------------------------------------------ CausalTransformer
TOKENS = dict(prompt=np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.int32),
              temperature=[1.0, 1.4, 0.8], top_k=[0, 6, 0], top_p=[1.0, 1.0, 0.9],
              stop_token=3, lengths=[16, 16, 5])
TOKEN_STEPS, TOKEN_SEED = 16, 2


@pytest.fixture(scope="module")
def token_reference(backends, models):
    out = Generator(backends("transformer", "savedmodel")).generate(
        TOKEN_STEPS, seed=TOKEN_SEED, **TOKENS)
    options = {k: TOKENS[k] for k in ("prompt", "temperature", "top_k", "top_p",
                                      "stop_token")}
    spec = Generator(backends("transformer", "savedmodel")).spec
    keras_out = _keras(models["transformer"], TOKEN_SEED, 3, TOKEN_STEPS, spec.noise_shape,
                       **options)
    return out, keras_out


def test_transformer_reference_stops_limits_and_matches_keras(token_reference):
    out, keras_out = token_reference
    lengths, limits = out["lengths"].tolist(), TOKENS["lengths"]
    assert out["x"].shape == (3, TOKEN_STEPS) and "images" not in out
    # the seed gives a row that stops at the stop token and one cut at its own limit
    stopped = [row for row in range(3) if lengths[row] < limits[row]]
    assert stopped and any(lengths[row] == limits[row] for row in range(3)), lengths
    for row, length in enumerate(lengths):
        assert 3 not in out["x"][row, :length]
        assert np.all(out["x"][row, length:] == 3)
    # Keras has no per-row limits: the same values up to each row's end, the same stops
    for row, length in enumerate(lengths):
        np.testing.assert_array_equal(out["x"][row, :length], keras_out["x"][row, :length])
        if row in stopped:
            assert keras_out["lengths"][row] == length
        else:
            assert keras_out["lengths"][row] >= length


@pytest.mark.parametrize("kind", BACKENDS)
def test_transformer_same_seed_same_tokens(backends, token_reference, kind):
    """Chunks of 5 (the stop token and the limit of 5 fall inside chunks) == the default."""
    expected, _ = token_reference
    generator = Generator(backends("transformer", kind), chunk_size=5)
    out = generator.generate(TOKEN_STEPS, seed=TOKEN_SEED, **TOKENS)
    np.testing.assert_array_equal(out["x"], expected["x"])
    np.testing.assert_array_equal(out["lengths"], expected["lengths"])
    # the in-graph loop (no prompt) applies stops and limits like the step loop
    options = dict(batch_size=3, seed=5, stop_token=3, lengths=[12, 4, 9])
    step = generator.generate(12, **options)
    graph = generator.generate(12, use_graph_loop=True, **options)
    np.testing.assert_array_equal(graph["x"], step["x"])
    np.testing.assert_array_equal(graph["lengths"], step["lengths"])


# ------------------------------------------------------------------------ PixelCNN
PIXEL_BATCH, PIXEL_SEED = 3, 4


@pytest.fixture(scope="module")
def pixel_reference(backends):
    return Generator(backends("pixelcnn", "savedmodel")).generate(
        16, batch_size=PIXEL_BATCH, seed=PIXEL_SEED)


def test_pixel_cnn_generates_images_like_keras(backends, models, pixel_reference):
    out = pixel_reference
    assert out["x"].shape == (PIXEL_BATCH, 16, 1)
    assert out["images"].shape == (PIXEL_BATCH, 4, 4, 1)
    assert out["images"].min() >= 0 and out["images"].max() < 4
    assert len(np.unique(out["images"])) > 1
    np.testing.assert_array_equal(out["images"].reshape(PIXEL_BATCH, 16, 1), out["x"])
    spec = Generator(backends("pixelcnn", "savedmodel")).spec
    assert spec.image_shape == (4, 4, 1) and spec.num_levels == 4
    keras_out = _keras(models["pixelcnn"], PIXEL_SEED, PIXEL_BATCH, 16, spec.noise_shape)
    np.testing.assert_array_equal(out["x"], keras_out["x"])
    # fewer steps than pixels: no whole images, no "images"
    assert "images" not in Generator(backends("pixelcnn", "savedmodel")).generate(5)


@pytest.mark.parametrize("kind", BACKENDS)
def test_pixel_cnn_same_seed_same_images(backends, pixel_reference, kind):
    generator = Generator(backends("pixelcnn", kind), chunk_size=3)  # chunks cross rows
    assert Generator(backends("pixelcnn", kind)).chunk_size == 4  # default: one image row
    out = generator.generate(16, batch_size=PIXEL_BATCH, seed=PIXEL_SEED)
    np.testing.assert_array_equal(out["images"], pixel_reference["images"])
    graph = generator.generate(16, batch_size=PIXEL_BATCH, seed=PIXEL_SEED,
                               use_graph_loop=True)
    np.testing.assert_array_equal(graph["images"], pixel_reference["images"])


def test_pixel_cnn_png_grid_from_the_cli(family_root, pixel_reference, tmp_path):
    png = tmp_path / "grid.png"
    assert cli.main(["generate", "--model", str(family_root / "pixelcnn" / "1"),
                     "--num_steps", "16", "--batch_size", str(PIXEL_BATCH),
                     "--seed", str(PIXEL_SEED), "--out", str(png)]) == 0
    grid = _read_png(png)
    assert grid.shape == (9, 9, 1)  # 3 images of 4x4 in 2 columns, 1-pixel gaps
    levels = pixel_reference["images"].astype(np.int64) * 85  # 4 levels -> 0, 85, 170, 255
    np.testing.assert_array_equal(grid[0:4, 0:4], levels[0])
    np.testing.assert_array_equal(grid[0:4, 5:9], levels[1])
    np.testing.assert_array_equal(grid[5:9, 0:4], levels[2])
    assert np.all(grid[4] == 0) and np.all(grid[5:9, 5:9] == 0)
    np.testing.assert_array_equal(
        writers.ids_to_images(pixel_reference["x"], (4, 4, 1), 4), levels)


# ------------------------------------------------------------------------ conditioned WaveNet
def _wavenet_conditions(batch=3, frames=7):
    rng = np.random.default_rng(1)
    return {"global_condition": np.array([0, 2, 1][:batch], np.int32),
            "local_condition": rng.normal(size=(batch, frames, 2)).astype(np.float32)}


@pytest.mark.parametrize("kind", BACKENDS)
def test_conditioned_wavenet_frames_match_keras(backends, models, kind):
    """local_hop = 4: step t reads frame (P + t) // 4; 7 frames cover 3 + 25 indices."""
    generator = Generator(backends("wavenet_cond", kind), chunk_size=6)  # crosses frames
    conditions = _wavenet_conditions()
    prompt = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.int32)
    outs = {}
    for label, options in (("plain", {}), ("prompt", {"prompt": prompt})):
        outs[label] = generator.generate(25, batch_size=3, seed=8, conditions=conditions,
                                         **options)
        expected = _keras(models["wavenet_cond"], 8, 3, 25, generator.spec.noise_shape,
                          conditions=conditions, **options)
        np.testing.assert_array_equal(outs[label]["x"], expected["x"])
    # the conditions matter: other local frames give other samples
    other = dict(conditions, local_condition=conditions["local_condition"][:, ::-1].copy())
    changed = generator.generate(25, batch_size=3, seed=8, conditions=other)
    assert not np.array_equal(changed["x"], outs["plain"]["x"])


def test_short_local_condition_is_refused(backends):
    generator = Generator(backends("wavenet_cond", "savedmodel"))
    with pytest.raises(ValueError, match="local_condition` has 7 frames"):
        generator.generate(29, batch_size=3, conditions=_wavenet_conditions())
    with pytest.raises(ValueError, match="needs at least 8"):
        generator.generate(26, batch_size=3, conditions=_wavenet_conditions(),
                           prompt=np.zeros((3, 3), np.int32))
