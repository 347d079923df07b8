"""The image path of the pipeline: Fashion-MNIST levels, image model checks, PNG samples, and
the shipped `fashion_pixelcnn.yaml` end to end on tiny settings (slow) on the SavedModel: the
same samples on another target and the parity gate of image models are test_embedding's and
tests/export's (class-conditioned images on every target: tests/serving/test_generate_images)."""

import dataclasses
import io
import pathlib

import numpy as np
import pytest

from pipelines import config as config_lib
from pipelines.components import sample_gen, training
from pipelines.data.sources import image_sources

CONFIG = pathlib.Path(__file__).parents[2] / "pipelines" / "configs" / "fashion_pixelcnn.yaml"


def _read_png(data):
    """PNG bytes or a path -> array."""
    from PIL import Image

    if not isinstance(data, bytes):
        data = pathlib.Path(data).read_bytes()
    return np.asarray(Image.open(io.BytesIO(data)))


def test_fashion_levels_option_binarises_and_rejects_bad_values():
    raw = _read_png(image_sources.FashionMnist().load(0)["image"])
    binary = image_sources.FashionMnist(levels=2)
    stored = _read_png(binary.load(0)["image"])
    assert raw.max() > 200 and set(np.unique(stored)) == {0, 1}
    np.testing.assert_array_equal(stored, raw // 128)
    assert binary.metadata() == {"num_classes": 10, "levels": 2,
                                 "classes": image_sources.FASHION_CLASSES}
    with pytest.raises(ValueError, match=r"`levels` must be an integer in \[2, 256\]; "
                                         r"received 1"):
        image_sources.FashionMnist(levels=1).check()


def test_image_model_must_cover_the_data_levels_and_classes():
    data = config_lib.DataConfig(source="fashion_mnist", modality="images", use_label=True)
    model = config_lib.ModelConfig(family="pixel_cnn", params={
        "image_shape": [8, 8, 1], "num_levels": 2, "num_layers": 1, "filters": 4,
        "num_global_classes": 10})
    meta = {"num_classes": 10, "levels": 256}
    with pytest.raises(ValueError, match=r"have 256 levels .*num_levels is 2; "
                       r"set num_levels to 256"):
        training.build_model(model, data, meta)
    small = dataclasses.replace(model, params={**model.params, "num_global_classes": 3})
    with pytest.raises(ValueError, match=r"10 classes but model.params.num_global_classes is 3"):
        training.build_model(small, data, {"num_classes": 10, "levels": 2})
    built = training.build_model(model, data, {"num_classes": 10, "levels": 2})
    assert type(built).__name__ == "PixelCNN" and built.num_levels == 2


def test_sample_images_are_written_as_pngs_and_a_grid(tmp_path):
    manifest = {"model": {"config": {"image_shape": [3, 2, 1], "num_levels": 2}}}
    x = np.array([[[0], [1], [1], [0], [0], [1]], [[1], [1], [1], [1], [0], [0]]])
    files = sample_gen._write(x, "tflite", tmp_path, {"modality": "images"}, manifest)
    assert files == ["tflite_0.png", "tflite_1.png", "tflite_grid.png"]
    first = _read_png(tmp_path / "tflite_0.png")
    np.testing.assert_array_equal(first, [[0, 255], [255, 0], [0, 255]])
    grid = _read_png(tmp_path / "tflite_grid.png")
    assert grid.shape == (3, 5)  # two 3x2 images side by side, one padding column
    np.testing.assert_array_equal(grid[:, 3:], [[255, 255], [255, 255], [0, 0]])


@pytest.mark.slow
def test_fashion_config_end_to_end_tiny(tmp_path):
    from pipelines import runner

    config = config_lib.load(CONFIG, overrides={
        "data.max_examples": 240, "data.batch_size": 8,
        "validation.max_bad_fraction": 0.0,
        "model.params.num_layers": 1, "model.params.filters": 4,
        "training.steps": 4, "training.steps_per_epoch": 2,
        "evaluation.max_batches": 2, "evaluation.max_bits_per_sample": 2.0,
        "evaluation.beat_unigram": False,  # 4 training steps: the plumbing, not learning
        "export.targets": ["savedmodel"], "export.verify_parity": False,
        "push.serving_base_path": str(tmp_path / "serving"),
        "generation.num_samples": 3})
    report = {n: o for n, _, o in runner.run(config, tmp_path / "root", logger=lambda m: None)}
    evaluation = report["Evaluator"]["evaluation"].path
    assert (evaluation / "BLESSED").is_file()
    samples = report["SampleGen"]["samples"].path
    grid = _read_png(samples / "savedmodel_grid.png")
    # every class once (10 rows, more than generation.num_samples): a 4-column grid of 28x28
    assert grid.shape == (86, 115)
    assert (samples / "savedmodel_9_Ankle-boot.png").is_file()  # named by class
    assert set(np.unique(grid)) <= {0, 255}
    assert len(list(samples.glob("savedmodel_*_*.png"))) == 10  # one file per row
