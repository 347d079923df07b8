"""The nearest-centroid check of class-conditional samples: exact on separable classes,
chance on noise, and the class read back from SampleGen's file names."""

import numpy as np

from pipelines.components import image_metrics


def _classes(rng, n):
    """Class 0: the top half lit; class 1: the left half lit (4 x 4, 2 levels, 10% flips)."""
    top = np.zeros((4, 4, 1))
    top[:2] = 1
    left = np.zeros((4, 4, 1))
    left[:, :2] = 1
    labels = rng.integers(0, 2, n)
    images = np.where(labels[:, None, None, None] == 0, top, left)
    flips = rng.random(images.shape) < 0.1
    return np.where(flips, 1 - images, images), labels


def test_agreement_is_high_on_the_classes_and_chance_on_noise():
    rng = np.random.default_rng(0)
    images, labels = _classes(rng, 200)
    means = image_metrics.centroids(images, labels, levels=2)
    test, test_labels = _classes(rng, 100)
    assert image_metrics.class_agreement(test, test_labels, means, 2) > 0.95
    noise = rng.integers(0, 2, (400, 4, 4, 1))
    assert abs(image_metrics.class_agreement(noise, rng.integers(0, 2, 400), means, 2)
               - 0.5) < 0.1
    # a model ignoring its condition: class-0 images asked for as class 1
    assert image_metrics.class_agreement(test[test_labels == 0], np.ones(
        (test_labels == 0).sum()), means, 2) < 0.05


def test_sample_classes_read_the_class_names_of_sample_files():
    names = ["T-shirt/top", "Trouser", "Ankle boot"]
    files = ["tflite_0_T-shirt-top.png", "tflite_1_Trouser.png", "tflite_2_Ankle-boot.png",
             "tflite_grid.png", "onnx_3.png"]
    assert image_metrics.sample_classes(files, names) == [0, 1, 2, None, None]
