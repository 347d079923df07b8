"""`keras-ar generate` on an image model: PNG grids (`--repeat`, `--scale`) and inpainting
from prompt images (`--prompt-images`, `--prompt-rows`) on SavedModel, TFLite and ONNX.

A tiny class-conditional GatedPixelCNN (4 x 4 pixels, 4 levels) is exported once per module;
the TFLite and ONNX conversions happen only in the tests that ask for them (marked slow)."""

import numpy as np
import pytest

from pipelines import cli
from serving.generator import noise_for
from tests.serving.test_writers_cli import _read_png

LOOP = ("init_state", "prefill", "sample_step", "sample_chunk", "generate")
CHUNKED = ("init_state", "prefill", "sample_chunk")  # what the chunked CLI runs: converted
# to TFLite and ONNX (faster than LOOP)
SHAPE, LEVELS = (4, 4, 1), 4
# two prompt images (ids 0..3), their classes; the top 2 rows are given
IMAGES = np.array([[[3, 0, 3, 0], [0, 3, 0, 3], [1, 1, 1, 1], [2, 2, 2, 2]],
                   [[2, 1, 0, 3], [3, 3, 0, 0], [0, 0, 0, 0], [3, 3, 3, 3]]])[..., None]
CLASSES, ROWS, REPEAT, SEED = [1, 0], 2, 3, 5


@pytest.fixture(scope="module")
def model():
    import keras

    from keras_ar.models import GatedPixelCNN

    keras.utils.set_random_seed(0)
    return GatedPixelCNN(image_shape=SHAPE, num_levels=LEVELS, num_layers=1, filters=8,
                         first_kernel_size=3, num_global_classes=2, global_embedding_dim=4)


@pytest.fixture(scope="module")
def artifacts(model, tmp_path_factory):
    """`artifacts(kind)` -> the exported model's path for `--model` (built on first use)."""
    from export.saved_model import export_saved_model

    root = tmp_path_factory.mktemp("image_model")
    saved = root / "savedmodel"
    export_saved_model(model, saved, signatures=LOOP)
    paths = {"savedmodel": saved}

    def get(kind):
        if kind not in paths:
            if kind == "tflite":
                from export.tflite import export_tflite

                export_tflite(model, root / kind, signatures=CHUNKED, saved_model_dir=saved)
            else:
                from export.onnx import export_onnx

                # check_atol=None: the comparisons with Keras below are the parity check
                export_onnx(model, root / kind, signatures=CHUNKED, check_atol=None)
            paths[kind] = root / kind
        return paths[kind]

    return get


@pytest.fixture(scope="module")
def inpainted(model):
    """The Keras model's completions of IMAGES' top rows, each REPEAT times, on the noise
    `keras-ar generate --seed SEED` draws: [2 * REPEAT, 16 - ROWS * 4, 1] ids."""
    batch, steps = len(IMAGES) * REPEAT, (SHAPE[0] - ROWS) * SHAPE[1]
    prompt = np.repeat(IMAGES[:, :ROWS].reshape(len(IMAGES), -1, 1), REPEAT, axis=0)
    out = model.generate_from_noise(
        noise_for(SEED, batch, steps, (1,)), prompt=prompt.astype(np.int32),
        conditions={"global_condition": np.repeat(CLASSES, REPEAT).astype(np.int32)})
    return np.asarray(out["x"])


def _cells(grid, rows, columns, scale=1, pad=1):
    """The [rows, columns] images [4, 4, 1] of a grid written with `pad`-pixel gaps."""
    step = (SHAPE[0] + pad) * scale
    return [[grid[r * step:r * step + 4 * scale:scale, c * step:c * step + 4 * scale:scale]
             for c in range(columns)] for r in range(rows)]


def test_repeat_grid_has_one_row_per_condition_and_scaled_pixels(artifacts, model, tmp_path):
    png = tmp_path / "classes.png"
    assert cli.main(["generate", "--model", str(artifacts("savedmodel")), "--num_steps", "16",
                     "--global-condition", "0,1", "--repeat", "3", "--scale", "2",
                     "--seed", "1", "--out", str(png)]) == 0
    grid = _read_png(png)
    assert grid.shape == ((2 * 6 - 2) * 2, (3 * 6 - 2) * 2, 1)  # 2 x 3 cells, 2-pixel gaps
    assert np.all(grid[8:12] == 255)  # white between the rows
    np.testing.assert_array_equal(grid[::2, ::2], grid[1::2, 1::2])  # 2 x 2 blocks
    keras = model.generate_from_noise(noise_for(1, 6, 16, (1,)), conditions={
        "global_condition": np.array([0, 0, 0, 1, 1, 1], np.int32)})
    expected = np.asarray(keras["x"]).reshape(2, 3, 4, 4, 1) * 85  # 4 levels -> 0..255
    cells = _cells(grid, 2, 3, scale=2, pad=2)
    for r in range(2):
        for c in range(3):
            np.testing.assert_array_equal(cells[r][c], expected[r, c])


def _inpaint(artifacts, kind, tmp_path, suffix, *extra):
    out = tmp_path / f"{kind}{suffix}"
    np.save(tmp_path / "prompt.npy", IMAGES.astype(np.uint8))
    assert cli.main(["generate", "--model", str(artifacts(kind)), "--prompt-images",
                     str(tmp_path / "prompt.npy"), "--prompt-rows", str(ROWS),
                     "--global-condition", ",".join(map(str, CLASSES)), "--repeat",
                     str(REPEAT), "--seed", str(SEED), "--out", str(out), *extra]) == 0
    return out


@pytest.mark.parametrize("kind", ["savedmodel", pytest.param("tflite", marks=pytest.mark.slow),
                                  pytest.param("onnx", marks=pytest.mark.slow)])
def test_inpainting_keeps_the_given_rows_and_generates_the_rest(artifacts, inpainted, kind,
                                                                tmp_path):
    grid = _read_png(_inpaint(artifacts, kind, tmp_path, ".png"))
    assert grid.shape == (2 * 6 - 2, (2 + REPEAT) * 6 - 2, 1)  # 2-pixel white gaps
    assert np.all(grid[4:6] == 255)
    given = ROWS * SHAPE[1]
    for i, row in enumerate(_cells(grid, 2, 2 + REPEAT, pad=2)):
        original, masked, completions = row[0], row[1], row[2:]
        np.testing.assert_array_equal(original, IMAGES[i] * 85)
        np.testing.assert_array_equal(masked[:ROWS], IMAGES[i, :ROWS] * 85)
        assert np.all(masked[ROWS:] == 128)
        for k, image in enumerate(completions):
            np.testing.assert_array_equal(image[:ROWS], IMAGES[i, :ROWS] * 85)  # kept exactly
            bottom = inpainted[i * REPEAT + k].reshape(-1, 1) * 85
            np.testing.assert_array_equal(image.reshape(-1, 1)[given:], bottom)
    saved = np.load(_inpaint(artifacts, kind, tmp_path, ".npz", "--chunk-size", "3"))
    np.testing.assert_array_equal(saved["x"], inpainted)  # the rest only, any chunk size
    np.testing.assert_array_equal(saved["prompt"][::REPEAT, :, 0],
                                  IMAGES[:, :ROWS].reshape(2, -1))


def test_inpainting_through_the_graph_loop_matches(artifacts, inpainted, tmp_path):
    saved = np.load(_inpaint(artifacts, "savedmodel", tmp_path, ".npz", "--graph-loop"))
    np.testing.assert_array_equal(saved["x"], inpainted)


def test_a_png_prompt_is_quantised_as_at_ingest(artifacts, model, tmp_path):
    from serving import image_prompt, writers

    pixels = np.array([[0, 63, 64, 127], [128, 191, 192, 255]] * 2, np.uint8)
    writers.write_png(tmp_path / "one.png", pixels)
    ids = image_prompt.read_images(tmp_path / "one.png", SHAPE, LEVELS)
    np.testing.assert_array_equal(ids[0, :, :, 0], pixels.astype(int) * LEVELS // 256)
    writers.write_png(tmp_path / "back.png", writers.ids_to_images(IMAGES[:1], SHAPE, LEVELS)[0])
    np.testing.assert_array_equal(image_prompt.read_images(tmp_path / "back.png", SHAPE,
                                                           LEVELS), IMAGES[:1])


@pytest.mark.parametrize("args, message", [
    (["--prompt-rows", "4"], "--prompt-rows 4"),
    (["--prompt-rows", "0"], "--prompt-rows 0"),
    (["--num_steps", "5"], "--num-steps 5: below 2 given rows"),
    (["--batch-size", "3"], "--batch-size 3, but --prompt-images holds 2 images"),
    (["--prompt", "1,2"], "--prompt and --prompt-images"),
    (["--scale", "0"], "--scale 0"),
])
def test_bad_inpainting_flags_are_refused_by_name(artifacts, tmp_path, capsys, args, message):
    np.save(tmp_path / "prompt.npy", IMAGES)
    code = cli.main(["generate", "--model", str(artifacts("savedmodel")), "--prompt-images",
                     str(tmp_path / "prompt.npy"), "--global-condition", "0,1", "--out",
                     str(tmp_path / "x.png"), *args])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("array, message", [
    (IMAGES + 1, "values range over [1, 4]"),
    (IMAGES[:, :3], "an array of shape [2, 3, 4, 1]"),
    (IMAGES * 0.5, "not all integers"),
])
def test_bad_prompt_images_are_refused_by_name(artifacts, tmp_path, capsys, array, message):
    np.save(tmp_path / "prompt.npy", array)
    code = cli.main(["generate", "--model", str(artifacts("savedmodel")), "--prompt-images",
                     str(tmp_path / "prompt.npy"), "--global-condition", "0,1", "--out",
                     str(tmp_path / "x.png")])
    assert code == 2 and message in capsys.readouterr().err


def test_prompt_rows_need_prompt_images_and_steps_are_required(artifacts, tmp_path, capsys):
    base = ["generate", "--model", str(artifacts("savedmodel")), "--out", str(tmp_path / "x.png")]
    assert cli.main(base + ["--num_steps", "16", "--prompt-rows", "2"]) == 2
    assert "pass --prompt-images FILE too" in capsys.readouterr().err
    assert cli.main(base) == 2
    assert "--num-steps is required" in capsys.readouterr().err
