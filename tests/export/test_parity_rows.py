"""The parity gate's sample rows: exact samples, a level tolerance only where the head
declares one, params judged per step, and failed targets named by the error."""

import numpy as np

from export import verify


def _samples(keras, tflite):
    return {"keras": [np.array(v) for v in keras], "tflite": [np.array(v) for v in tflite]}


def test_level_tolerance_and_params_verdicts():
    same = _samples([[3, 4], [5, 6]], [[3, 4], [5, 6]])
    off_by_one = _samples([[3, 4], [5, 6]], [[3, 5], [5, 6]])
    off_by_two = _samples([[3, 4], [5, 6]], [[3, 6], [5, 6]])

    def verdicts(samples, tolerance, params_ok=True):
        rows = verify._sample_rows(samples, {"tflite": 2e-5}, 2, 1e-5, tolerance,
                                   {"tflite": params_ok})
        return [row[-1] for row in rows]

    assert verdicts(same, 0) == [True, True]
    assert verdicts(off_by_one, 0) == [False, True]
    assert verdicts(off_by_one, 1) == [True, True]
    assert verdicts(off_by_two, 1) == [False, True]
    assert verdicts(same, 0, params_ok=False) == [True, False]
    rows = verify._sample_rows(same, {"tflite": 2e-5}, 2, 1e-5)  # absolute bound alone
    assert [row[-1] for row in rows] == [True, False]


def test_parity_error_names_the_failed_targets():
    rows = [("savedmodel", "step", "params", 0.0, True), ("tflite", "step", "params", 1.0,
                                                          False),
            ("onnx", "log_prob", "log_prob", 0.0, True)]
    error = verify.ParityError("failed", rows)
    assert error.failed_targets == ["tflite"] and error.rows == rows


def test_only_fine_mixtures_declare_a_level_tolerance():
    from keras_ar.heads import CategoricalHead, DiscretizedLogisticMixtureHead

    assert DiscretizedLogisticMixtureHead(num_levels=256).sample_level_tolerance == 0
    assert DiscretizedLogisticMixtureHead(num_channels=1,
                                          num_levels=65536).sample_level_tolerance == 1
    assert getattr(CategoricalHead(num_classes=256), "sample_level_tolerance", 0) == 0
