"""The pipeline's component interfaces (inputs and their producers, outputs, parameters,
executors), in DAG order.

The executor modules are imported here: they load TensorFlow only inside `execute`, so
importing the specs stays cheap. Parameters are the slice of the config each component depends on,
so changing a field reruns
exactly the components that read it (and those whose inputs then change).
"""

import dataclasses
import hashlib
import pathlib

from pipelines.components import (
    data_validator,
    embedder,
    evaluator,
    example_gen,
    exporter,
    pusher,
    report,
    sample_gen,
    trainer,
)
from pipelines.components.base import ComponentSpec, Input

# Artifact types.
EXAMPLES = "Examples"
STATISTICS = "ExampleStatistics"
SCHEMA = "Schema"
ANOMALIES = "ExampleAnomalies"
MODEL = "Model"
EVALUATION = "ModelEvaluation"
EXPORTED_MODEL = "ExportedModel"
PUSHED_MODEL = "PushedModel"
SAMPLES = "Samples"
EMBEDDER_MODEL = "EmbedderModel"
REPORT = "RunReport"

# data fields the input pipeline reads (not ingest): a change retrains, never re-ingests.
_INGEST_FIELDS = ("source", "modality", "options", "max_examples", "num_shards", "eval_percent",
                  "test_percent")


def _data(config, fields=None):
    data = dataclasses.asdict(config.data)
    data.pop("examples_dir")
    return {k: v for k, v in data.items() if fields is None or k in fields}


def _section(config, name):
    return dataclasses.asdict(getattr(config, name))


def _vocabulary(config):
    """The vocabulary file's content hash (so editing the file in place reruns what reads
    it); {} for byte text. A missing file is left to the executor's clear error."""
    path = pathlib.Path(config.data.vocabulary) if config.data.vocabulary else None
    if path is None or not path.is_file():
        return {}
    return {"vocabulary_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _ingest(config):
    """ExampleGen's parameters; for pairs also the model's target length rule and the
    window, which every pair must fit (checked at ingest)."""
    out = {"data": _data(config, _INGEST_FIELDS)}
    if config.data.modality == "pairs":
        from pipelines.data import pairs

        out["pairs_limits"] = {"rule": pairs.target_rule(config.model.family,
                                                         config.model.params),
                               "window": config.data.window}
    return out


EXAMPLE_GEN = ComponentSpec(
    name="ExampleGen", inputs={}, outputs={"examples": EXAMPLES},
    parameters=_ingest,
    executor=example_gen.execute,
    code=("pipelines.data.sources", "pipelines.data.records", "pipelines.data.pairs"))

DATA_VALIDATOR = ComponentSpec(
    name="DataValidator", inputs={"examples": Input(EXAMPLES, "ExampleGen", "examples")},
    outputs={"examples": EXAMPLES, "statistics": STATISTICS, "schema": SCHEMA,
             "anomalies": ANOMALIES},
    parameters=lambda c: {"validation": _section(c, "validation"),
                          "modality": c.data.modality},
    executor=data_validator.execute,
    code=("pipelines.components.record_checks", "pipelines.data.records"))

def _embedding(config):
    """The Embedder's parameters: none but the switch when it is off (a data change must
    not rerun a component that does nothing)."""
    out = {"embedding": _section(config, "embedding")}
    if config.embedding.model:
        params = config.model.params
        out.update(data=_data(config), image_shape=params.get("image_shape"),
                   levels=params.get("num_levels", 256))
    return out


EMBEDDER = ComponentSpec(
    name="Embedder", inputs={"examples": Input(EXAMPLES, "DataValidator", "examples")},
    outputs={"embedder": EMBEDDER_MODEL},
    parameters=_embedding, executor=embedder.execute,
    code=("pipelines.data.dataset",))

TRAINER = ComponentSpec(
    name="Trainer",
    inputs={"examples": Input(EXAMPLES, "DataValidator", "examples"),
            "schema": Input(SCHEMA, "DataValidator", "schema"),
            "embedder": Input(EMBEDDER_MODEL, "Embedder", "embedder")},
    outputs={"model": MODEL},
    parameters=lambda c: {"data": _data(c), "model": _section(c, "model"),
                          "training": _section(c, "training"), **_vocabulary(c)},
    executor=trainer.execute,
    code=("pipelines.components.training", "pipelines.components.trainer_workers",
          "pipelines.data.dataset", "pipelines.data.vocabulary", "pipelines.data.pairs",
          "keras_ar"))

EVALUATOR = ComponentSpec(
    name="Evaluator",
    inputs={"model": Input(MODEL, "Trainer", "model"),
            "examples": Input(EXAMPLES, "DataValidator", "examples"),
            "embedder": Input(EMBEDDER_MODEL, "Embedder", "embedder")},
    outputs={"evaluation": EVALUATION},
    parameters=lambda c: {"data": _data(c), "evaluation": _section(c, "evaluation"),
                          "push": _section(c, "push"), **_vocabulary(c)},
    executor=evaluator.execute,
    code=("pipelines.data.dataset", "pipelines.data.vocabulary", "pipelines.data.pairs",
          "pipelines.components.repository", "pipelines.components.phoneme_metrics",
          "pipelines.components.seq2seq_eval", "keras_ar"),
    runtime_parameters=lambda c, inputs: {"baseline": _baseline(c, inputs)})

EXPORTER = ComponentSpec(
    name="Exporter", inputs={"model": Input(MODEL, "Trainer", "model")},
    outputs={"exported_model": EXPORTED_MODEL},
    parameters=lambda c: {"export": _section(c, "export")},
    executor=exporter.execute,
    code=("export", "keras_ar"))

PUSHER = ComponentSpec(
    name="Pusher",
    inputs={"exported_model": Input(EXPORTED_MODEL, "Exporter", "exported_model"),
            "evaluation": Input(EVALUATION, "Evaluator", "evaluation"),
            "model": Input(MODEL, "Trainer", "model")},
    outputs={"pushed_model": PUSHED_MODEL},
    parameters=lambda c: {"push": _section(c, "push")},
    executor=pusher.execute,
    code=("pipelines.components.repository", "export.repository"))

SAMPLE_GEN = ComponentSpec(
    name="SampleGen",
    inputs={"exported_model": Input(EXPORTED_MODEL, "Exporter", "exported_model"),
            "examples": Input(EXAMPLES, "DataValidator", "examples"),
            "embedder": Input(EMBEDDER_MODEL, "Embedder", "embedder")},
    outputs={"samples": SAMPLES},
    parameters=lambda c: {"generation": _section(c, "generation"),
                          "modality": c.data.modality, "sample_rate": c.data.sample_rate,
                          **({"vocabulary": c.data.vocabulary} if c.data.vocabulary else {}),
                          **({"data": _data(c)} if c.data.local_features or c.embedding.model
                             or c.data.modality == "pairs" else {}),
                          **_vocabulary(c)},
    executor=sample_gen.execute,
    code=("serving", "pipelines.data.vocabulary", "pipelines.data.pairs",
          "pipelines.components.sample_features",
          "pipelines.data.dataset", "pipelines.data.features"))

REPORTER = ComponentSpec(
    name="Reporter",
    inputs={"model": Input(MODEL, "Trainer", "model"),
            "evaluation": Input(EVALUATION, "Evaluator", "evaluation"),
            "exported_model": Input(EXPORTED_MODEL, "Exporter", "exported_model"),
            "samples": Input(SAMPLES, "SampleGen", "samples"),
            "examples": Input(EXAMPLES, "DataValidator", "examples")},
    outputs={"report": REPORT},
    parameters=lambda c: {"name": c.name, "modality": c.data.modality,
                          "sample_rate": c.data.sample_rate},
    executor=report.execute,
    code=("pipelines.components.report_images", "pipelines.components.audio_metrics",
          "pipelines.components.image_metrics",
          "pipelines.components.report_tensorboard"))


def _baseline(config, inputs):
    """The pushed model the Evaluator would compare against (a change reruns it)."""
    from pipelines.components import repository
    from pipelines.components.base import fingerprint

    if not config.push.serving_base_path:
        return None
    model_fp = fingerprint(inputs["model"].path / "model.keras")
    version, _ = repository.baseline(config.push.serving_base_path, model_fp)
    if version is None:
        return None
    info = repository.push_info(config.push.serving_base_path, version)
    return {"version": version, "model_fingerprint": info.get("model_fingerprint")}


PIPELINE = (EXAMPLE_GEN, DATA_VALIDATOR, EMBEDDER, TRAINER, EVALUATOR, EXPORTER, PUSHER, SAMPLE_GEN,
            REPORTER)
BY_NAME = {spec.name: spec for spec in PIPELINE}


def get(name):
    if name not in BY_NAME:
        raise ValueError(f"Unknown component {name!r}; choose from {list(BY_NAME)}.")
    return BY_NAME[name]
