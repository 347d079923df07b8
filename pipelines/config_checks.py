"""Value and reference checks of a loaded `PipelineConfig` (`pipelines.config.from_dict` runs
them before any component does): every number finite and in its range, every name one that
exists (sources, families, model arguments, export targets), and the sections that must agree
(the model's alphabet and the audio encoding, a seq2seq model's vocabularies and lengths
and its pairs data, local features and the model's frames, the
Embedder and the model's vector condition, schedules and early stopping). Each failure is a
`ConfigError` naming the file, the dotted key, the value and what is expected.
"""

import dataclasses
import math

from pipelines.config import MODALITIES, MODEL_FAMILIES, STRATEGIES, ConfigError

EXPORT_TARGETS = ("savedmodel", "tflite", "onnx")


def check(config, where):
    check_values(config, where)
    check_references(config, where)
    check_pairs(config, where)
    check_beam(config, where)


def check_pairs(config, where):
    """Sequence-to-sequence data and models agree (`pipelines.config_pairs`)."""
    from pipelines import config_pairs

    config_pairs.check(config, where)


def check_beam(config, where):
    """`beam.runner` is a runner Beam knows, `beam.options` are Beam options of the right
    types, and a Dask scheduler address answers (`pipelines.beam_options`)."""
    from pipelines import beam_options

    beam_options.check(config.beam, where)


def check_values(config, where):
    def fail(key, value, expected):
        raise ConfigError(f"{where}: `{key}` = {value!r} is invalid; expected {expected}.")

    if config.data.modality not in MODALITIES:
        fail("data.modality", config.data.modality, f"one of {list(MODALITIES)}")
    if config.training.strategy not in STRATEGIES:
        fail("training.strategy", config.training.strategy, f"one of {list(STRATEGIES)}")
    if config.training.mixed_precision not in ("", "mixed_float16", "mixed_bfloat16"):
        fail("training.mixed_precision", config.training.mixed_precision,
             "'', 'mixed_float16' or 'mixed_bfloat16'")
    for key in ("data.num_shards", "data.batch_size", "data.window", "training.steps",
                "training.steps_per_epoch", "export.parity_steps"):
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value < 1:
            fail(key, value, "an integer >= 1")
    _check_local_features(config, fail)
    _check_embedding(config, fail)
    if config.data.audio_encoding not in ("mu_law", "linear"):
        fail("data.audio_encoding", config.data.audio_encoding, "'mu_law' or 'linear'")
    if config.data.modality == "audio" and not 2 <= config.data.quantization_channels <= 65536:
        fail("data.quantization_channels", config.data.quantization_channels,
             "2 to 65536 audio levels")
    if config.data.vocabulary and config.data.modality != "tokens":
        fail("data.vocabulary", config.data.vocabulary, "'' unless data.modality is 'tokens'")
    if config.data.eval_percent + config.data.test_percent >= 100:
        fail("data.eval_percent + data.test_percent",
             config.data.eval_percent + config.data.test_percent, "less than 100")
    _check_training(config.training, fail)
    _check_workers(config.training, fail)
    _check_metadata(config.metadata, fail)
    if not 0.0 <= config.validation.max_bad_fraction <= 1.0:
        fail("validation.max_bad_fraction", config.validation.max_bad_fraction, "in [0, 1]")
    _check_finite(config, fail)
    _check_ranges(config, fail)


def _check_finite(config, fail, prefix=""):
    """Every float field of every section is a finite number (YAML reads .nan and .inf)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            _check_finite(value, fail, f"{prefix}{field.name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            fail(prefix + field.name, value, "a finite number")


_AT_LEAST = {  # dotted key -> smallest value
    "data.max_examples": 0, "data.eval_percent": 0, "data.test_percent": 0,
    "data.sample_rate": 1, "data.shuffle_buffer": 1, "validation.min_length": 0,
    "validation.max_length": 1, "training.validation_batches": 0,
    "evaluation.max_batches": 1, "evaluation.max_regression": 0.0,
    "generation.num_samples": 1, "generation.num_steps": 1, "generation.temperature": 0.0,
}


def _check_ranges(config, fail):
    for key, least in _AT_LEAST.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value < least:
            fail(key, value, f"a number >= {least}")
    if config.validation.min_length > config.validation.max_length:
        fail("validation.min_length", config.validation.min_length,
             f"at most validation.max_length = {config.validation.max_length}")
    targets = config.export.targets
    unknown = [t for t in targets if t not in EXPORT_TARGETS]
    if unknown or not targets or len(set(targets)) != len(targets):
        fail("export.targets", targets,
             f"a non-empty list of distinct targets from {list(EXPORT_TARGETS)}")


LR_SCHEDULES = ("constant", "warmup_cosine")


def _check_training(training, fail):
    """Learning-rate schedule and early-stopping values (`fail(key, value, expected)`)."""
    if not training.learning_rate > 0:
        fail("training.learning_rate", training.learning_rate, "a number > 0")
    if training.lr_schedule not in LR_SCHEDULES:
        fail("training.lr_schedule", training.lr_schedule, f"one of {list(LR_SCHEDULES)}")
    if not 0 <= training.warmup_steps < training.steps:
        fail("training.warmup_steps", training.warmup_steps,
             f"an integer in [0, training.steps = {training.steps}) (the cosine decays over "
             "the steps after the warm-up)")
    if training.warmup_steps and training.lr_schedule != "warmup_cosine":
        fail("training.warmup_steps", training.warmup_steps,
             "0 unless training.lr_schedule is 'warmup_cosine'")
    if not 0.0 <= training.min_learning_rate <= training.learning_rate:
        fail("training.min_learning_rate", training.min_learning_rate,
             f"a number in [0, training.learning_rate = {training.learning_rate}]")
    if training.min_learning_rate and training.lr_schedule != "warmup_cosine":
        fail("training.min_learning_rate", training.min_learning_rate,
             "0 unless training.lr_schedule is 'warmup_cosine'")
    if training.early_stopping_patience < 0:
        fail("training.early_stopping_patience", training.early_stopping_patience,
             "an integer >= 0 (0: no early stopping)")
    if training.early_stopping_min_delta < 0:
        fail("training.early_stopping_min_delta", training.early_stopping_min_delta,
             "a number >= 0 (bits per position)")
    if training.early_stopping_patience and training.validation_batches <= 0:
        fail("training.early_stopping_patience", training.early_stopping_patience,
             "0 when training.validation_batches is 0 (early stopping watches the "
             "validation loss: set validation_batches >= 1 or patience 0)")
    if training.early_stopping_patience and training.strategy == "multi_worker":
        fail("training.early_stopping_patience", training.early_stopping_patience,
             "0 under training.strategy 'multi_worker' (its loop runs no validation)")


def _check_workers(training, fail):
    """`training.workers`: local worker processes, only under `multi_worker`."""
    if training.workers < 0:
        fail("training.workers", training.workers,
             "an integer >= 0 (0: this process is one worker of TF_CONFIG's cluster)")
    if training.workers and training.strategy != "multi_worker":
        fail("training.workers", training.workers,
             f"0 unless training.strategy is 'multi_worker' (it is {training.strategy!r}); "
             "set training.strategy: multi_worker to train on worker processes")


def _check_metadata(metadata, fail):
    """`metadata`: SQLite (`sqlite`, default) or MySQL (`mysql.host` set), not both."""
    mysql = metadata.mysql
    if not mysql.host:
        for name in ("database", "user", "password_env"):
            if getattr(mysql, name):
                fail(f"metadata.mysql.{name}", getattr(mysql, name),
                     "'' without metadata.mysql.host (set the host to use MySQL)")
        return
    if metadata.sqlite:
        fail("metadata.sqlite", metadata.sqlite,
             "'' when metadata.mysql is set (one store: remove one of the two)")
    if not 1 <= mysql.port <= 65535:
        fail("metadata.mysql.port", mysql.port, "a TCP port in 1..65535")
    for name in ("database", "user"):
        if not getattr(mysql, name):
            fail(f"metadata.mysql.{name}", getattr(mysql, name),
                 "a non-empty name (MySQL needs a database and a user)")


def check_references(config, where):
    """`data.source`, `model.family` and `model.params` name things that exist, checked
    before any component runs (a typo must not fail only after the ingest)."""
    from pipelines.data import sources

    if config.data.source not in sources.SOURCES:
        raise ConfigError(f"{where}: `data.source` = {config.data.source!r} is unknown; "
                          f"choose from {sorted(sources.SOURCES)}.")
    family = config.model.family
    if family not in MODEL_FAMILIES:
        raise ConfigError(f"{where}: `model.family` = {family!r} is unknown; choose from "
                          f"{sorted(MODEL_FAMILIES)}.")
    import keras_ar.models

    cls = getattr(keras_ar.models, MODEL_FAMILIES[family])
    accepted = _arguments(cls, keras_ar.models.AutoregressiveModel)
    unknown = sorted(set(config.model.params) - accepted)
    if unknown:
        raise ConfigError(f"{where}: `model.params` {unknown} are not arguments of "
                          f"{cls.__name__}; it takes {sorted(accepted)}.")
    if config.data.modality == "audio" and family == "wavenet":
        _check_audio_levels(config, cls, where)


def _arguments(cls, base):
    """The keyword arguments `cls` takes: its own and, while an `__init__` passes **kwargs
    on, those of the model classes it inherits from (not `base`'s Keras arguments)."""
    import inspect

    accepted = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is base or not issubclass(klass, base):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        accepted |= {p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return accepted


def _check_audio_levels(config, cls, where):
    """The model's alphabet and companding agree with the data's encoding."""
    import inspect

    defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()}
    params = {**defaults, **config.model.params}
    data = config.data
    if int(params["num_classes"]) != data.quantization_channels:
        raise ConfigError(
            f"{where}: `model.params.num_classes` = {params['num_classes']} but "
            f"`data.quantization_channels` = {data.quantization_channels}; the model must "
            "score every level the data holds: set both to the same number.")
    if bool(params["mu_law"]) != (data.audio_encoding == "mu_law"):
        raise ConfigError(
            f"{where}: `model.params.mu_law` = {params['mu_law']} but `data.audio_encoding` = "
            f"{data.audio_encoding!r}; set mu_law: {data.audio_encoding == 'mu_law'} (it "
            "tells generation how to turn levels back into audio).")


def _switched_on(fail, key, value, kind, modality, needed, why):
    """False for '' (off); True for `kind` with data.modality `needed`; else `fail`."""
    if not value:
        return False
    if value != kind:
        fail(key, value, f"'' or {kind!r}")
    if modality != needed:
        fail(key, value, f"'' for data.modality {modality!r} ({why})")
    return True


def _check_local_features(config, fail):
    data = config.data
    if not _switched_on(fail, "data.local_features", data.local_features, "log_mel",
                        data.modality, "audio", "features are computed from audio"):
        return
    if data.num_mels < 1 or data.feature_hop < 1:
        fail("data.num_mels / data.feature_hop", (data.num_mels, data.feature_hop),
             "integers >= 1")
    if data.window % data.feature_hop:
        fail("data.window", data.window,
             f"a multiple of data.feature_hop ({data.feature_hop}) so crops keep whole frames")
    params = config.model.params
    for key, value in (("local_condition_dim", data.num_mels), ("local_hop", data.feature_hop)):
        if params.get(key) != value:
            fail(f"model.params.{key}", params.get(key),
                 f"{value} (data.{'num_mels' if key == 'local_condition_dim' else 'feature_hop'}"
                 "): the model takes the frames the input pipeline computes")


def _check_embedding(config, fail):
    embedding, data = config.embedding, config.data
    if not _switched_on(fail, "embedding.model", embedding.model, "label_classifier",
                        data.modality, "images", "the classifier embeds images"):
        return
    if data.use_label:
        fail("data.use_label", True, "false with an embedding: the embedding vector is the "
             "model's global_condition (the labels train the embedder)")
    if embedding.dim < 1 or embedding.steps < 1 or not embedding.learning_rate > 0:
        fail("embedding.dim / steps / learning_rate",
             (embedding.dim, embedding.steps, embedding.learning_rate),
             "integers >= 1 and a learning rate > 0")
    params = config.model.params
    if params.get("global_condition_dim") != embedding.dim or params.get("num_global_classes"):
        fail("model.params.global_condition_dim", params.get("global_condition_dim"),
             f"{embedding.dim} (embedding.dim) and no num_global_classes: the model is "
             "conditioned on the embedding vector")
