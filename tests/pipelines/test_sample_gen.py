"""SampleGen gives every speaker/class a sample per target and names each file by it."""

import numpy as np

from pipelines.components import sample_gen


def _manifest(classes, names=None, key="speakers"):
    return {"conditions": {"whole": {"global_condition": {"shape": [None], "dtype": "int32"}}},
            "model": {"config": {"num_global_classes": classes}},
            "decoding": {"num_classes": 256, "mu_law": True, **({key: names} if names else {})}}


def test_every_class_gets_a_row():
    conditions = sample_gen._conditions(_manifest(4), 2)
    np.testing.assert_array_equal(conditions["global_condition"], [0, 1, 2, 3])
    assert sample_gen._rows(conditions, 2) == 4
    more = sample_gen._conditions(_manifest(3), 5)  # num_samples above the class count
    np.testing.assert_array_equal(more["global_condition"], [0, 1, 2, 0, 1])
    assert sample_gen._conditions({"conditions": {"whole": {}}}, 2) == {}


def test_files_are_named_by_speaker(tmp_path):
    manifest = _manifest(2, ["en-us+m3", "en gb/f2"])
    conditions = sample_gen._conditions(manifest, 2)
    x = np.full((2, 80), 128, np.int32)
    files = sample_gen._write(x, "tflite", tmp_path, {"modality": "audio", "sample_rate": 8000},
                              manifest, conditions=conditions)
    assert files == ["tflite_0_en-us+m3.wav", "tflite_1_en-gb-f2.wav"]
    assert all((tmp_path / f).is_file() for f in files)
    unnamed = sample_gen._conditions(_manifest(2), 2)
    assert sample_gen._label(_manifest(2), unnamed, 1) == "_class1"
