"""Runner + ML Metadata: caching, reruns of exactly the affected components, lineage, the
evaluation gate, and failures that leave the repository untouched."""

import dataclasses
import io
import pathlib

import pytest

from pipelines import runner, show
from pipelines.components import repository
from pipelines.metadata import Metadata
from serving.model_manager import read_config_file
from tests.pipelines import helpers


def _states(report):
    return {name: state for name, state, _ in report}


@pytest.mark.slow
def test_cache_rerun_lineage_and_gate(tmp_path):
    root = tmp_path / "root"
    config = helpers.pipeline_config(tmp_path)
    first = runner.run(config, root, logger=lambda m: None)
    assert set(_states(first).values()) == {"COMPLETE"}
    base = config.push.serving_base_path
    assert repository.versions(base) == [1]
    warmup = pathlib.Path(base) / "1" / "assets.extra" / "tf_serving_warmup_requests"
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(str(warmup))]
    assert {log.predict_log.request.model_spec.name for log in logs} == {"model"}
    assert "sample_step" in {log.predict_log.request.model_spec.signature_name for log in logs}
    served = read_config_file(pathlib.Path(base).parent / "models.config")
    assert [(m.name, m.base_path) for m in served] == [("model", pathlib.Path(base).resolve())]
    import json

    result = json.loads((dict((n, o) for n, _, o in first)["Evaluator"]["evaluation"].path
                         / "evaluation.json").read_text())
    assert 0.0 < result["unigram_bits_per_position"] <= 8.0  # recorded (gate off: 4 steps)
    samples = dict((n, o) for n, _, o in first)["SampleGen"]["samples"].path
    assert list(samples.glob("savedmodel_*.wav"))
    report = dict((n, o) for n, _, o in first)["Reporter"]["report"].path
    text = (report / "report.md").read_text()
    for section in ("## Training", "## Evaluation", "## Export parity", "## Samples"):
        assert section in text
    assert "| test speech" in text and "savedmodel_0_en-us+m3.wav" in text
    assert (report / "loss_curves.png").is_file()
    assert sorted(p.name for p in report.glob("spectrogram_*.png")) == [
        "spectrogram_en-us+f3.png", "spectrogram_en-us+m3.png"]

    second = runner.run(config, root, logger=lambda m: None)
    assert set(_states(second).values()) == {"CACHED"}, _states(second)

    changed = dataclasses.replace(config, generation=dataclasses.replace(
        config.generation, num_steps=60))
    third = _states(runner.run(changed, root, logger=lambda m: None))
    assert third.pop("SampleGen") == "COMPLETE"
    assert third.pop("Reporter") == "COMPLETE"  # its samples changed
    assert set(third.values()) == {"CACHED"}

    store = Metadata(root / runner.METADATA_FILE)
    listing = io.StringIO()
    show.show(root, out=listing)
    assert " s " in listing.getvalue() and "records=" in listing.getvalue()  # durations, counts
    pushed = show.latest_pushed(store)
    types = show.lineage_types(store, pushed)
    assert types[0] == "PushedModel" and "Model" in types and "Examples" in types

    # A deliberately worse model (one step at a harmful learning rate) is not blessed and
    # the repository keeps exactly its one version.
    worse = dataclasses.replace(config, training=dataclasses.replace(
        config.training, steps=1, steps_per_epoch=1, learning_rate=5.0, ema_momentum=0.0),
        evaluation=dataclasses.replace(config.evaluation, max_bits_per_sample=100.0))
    report = dict((n, o) for n, _, o in runner.run(worse, root, logger=lambda m: None))
    evaluation = report["Evaluator"]["evaluation"].path
    assert (evaluation / "NOT_BLESSED").is_file()
    assert "worse than the pushed version 1" in (evaluation / "NOT_BLESSED").read_text()
    assert report["Pusher"]["pushed_model"].properties["pushed"] == 0
    assert repository.versions(base) == [1]


@pytest.mark.slow
def test_bad_source_fails_clearly_and_touches_nothing(tmp_path):
    root = tmp_path / "root"
    config = helpers.pipeline_config(tmp_path, data__options={"voices": ["en-us"],
                                                              "sentences": ["One."]})
    with pytest.raises(runner.PipelineError, match=r"ExampleGen failed.*split .* is empty"):
        runner.run(config, root, logger=lambda m: None)
    assert repository.versions(config.push.serving_base_path) == []
    store = Metadata(root / runner.METADATA_FILE)
    [execution] = store.executions("ExampleGen")
    assert "is empty" in execution.custom_properties["error"].string_value
    saved = execution.custom_properties["traceback"].string_value
    assert saved.startswith(str(root / "errors")) and "Traceback" in open(saved).read()
    listing = io.StringIO()
    assert show.show(root, out=listing) == 0
    text = listing.getvalue()
    assert "ExampleGen" in text and "FAILED" in text and f"traceback: {saved}" in text
