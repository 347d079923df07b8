"""The export parity gate stops the run: a target whose artifact differs from Keras fails the
Exporter before the Pusher; `export.allow_missing_targets` drops exactly that target."""

import json

import numpy as np
import pytest

from pipelines import runner
from pipelines.components import repository
from tests.pipelines import helpers


def _broken_tflite(monkeypatch):
    """TFLite converted from slightly different weights: a genuinely wrong artifact."""
    from export import tflite

    real = tflite.export_tflite

    def export_perturbed(model, *args, **kwargs):
        kwargs["saved_model_dir"] = None  # convert from these weights, not the SavedModel
        saved = [w.numpy() for w in model.weights]
        for w in model.weights:
            if "float" in str(w.dtype) and len(w.shape) >= 2:
                w.assign(w + 1e-2)
        try:
            return real(model, *args, **kwargs)
        finally:
            for w, value in zip(model.weights, saved):
                w.assign(value)

    monkeypatch.setattr(tflite, "export_tflite", export_perturbed)


@pytest.mark.slow
def test_a_target_failing_parity_stops_the_run_or_is_dropped_by_name(tmp_path, monkeypatch):
    _broken_tflite(monkeypatch)
    # The gate runs after every conversion: ONNX would only add a conversion to the stop.
    config = helpers.pipeline_config(
        tmp_path, export__targets=["savedmodel", "tflite"], export__verify_parity=True)
    root = tmp_path / "root"
    with pytest.raises(runner.PipelineError, match=r"Exporter failed") as failure:
        runner.run(config, root, logger=lambda m: None)
    text = str(failure.value)
    assert "tflite" in text and "allow_missing_targets" in text
    assert "sample_step x64" in text  # the pipeline checks as many steps as `export verify`
    assert repository.versions(config.push.serving_base_path) == []  # nothing pushed

    allowed = helpers.pipeline_config(
        tmp_path, export__targets=["savedmodel", "tflite", "onnx"], export__verify_parity=True,
        export__allow_missing_targets=True)
    report = {n: (s, o) for n, s, o in runner.run(allowed, root, logger=lambda m: None)}
    assert report["Trainer"][0] == "CACHED"
    exported = report["Exporter"][1]["exported_model"]
    result = json.loads((exported.path / "export_report.json").read_text())
    assert sorted(result["failures"]) == ["tflite"]  # exactly the broken one, not ONNX
    assert exported.properties["targets"] == "savedmodel,onnx"
    assert all(row[-1] for row in result["parity"])
    assert {row[0] for row in result["parity"]} == {"savedmodel", "onnx"}
    samples = report["SampleGen"][1]["samples"].path
    assert list(samples.glob("onnx_*.wav")) and not list(samples.glob("tflite_*.wav"))
    assert repository.versions(config.push.serving_base_path) == [1]
    assert np.isfinite(result["targets"]["onnx"]["seconds"])
