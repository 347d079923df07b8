"""Pipeline configuration: YAML (`yaml.safe_load` only) validated into typed dataclasses.

Every field has a type and a default; `load(path)` rejects unknown keys, wrong types and
missing files with an error that names the file, the dotted key, what was received and what
is expected. Sections map to components: `data` (ExampleGen, input pipelines), `validation`
(DataValidator), `model` + `training` (Trainer), `evaluation` (Evaluator), `export`
(Exporter), `push` (Pusher), `generation` (SampleGen).
"""

import dataclasses
import os
import pathlib
import typing

import yaml


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "espeak"  # espeak | klettres | fortunes | python_stdlib | fashion_mnist | ...
    modality: str = "audio"  # audio | tokens | images | sequences (must match the source)
    options: dict = dataclasses.field(default_factory=dict)  # passed to the source adapter
    max_examples: int = 0  # 0: all the source offers
    num_shards: int = 2  # TFRecord shards per split
    eval_percent: int = 10  # split by a stable hash of each record's key
    test_percent: int = 10
    sample_rate: int = 8000  # audio: model rate (resampled in the graph)
    window: int = 2048  # audio samples / tokens per training example (random crop)
    quantization_channels: int = 256  # audio: levels (65536 linear = 16 bit); tokens: bytes
    audio_encoding: str = "mu_law"  # audio: mu_law | linear (PCM levels)
    vocabulary: str = ""  # tokens: word vocabulary file (ids = lines, then OOV, stop); "" = bytes
    lowercase: bool = True  # tokens with a vocabulary: lower-case text before the lookup
    use_speaker: bool = True  # audio: speaker id as `global_condition`
    use_label: bool = False  # images: class label as `global_condition`
    local_features: str = ""  # audio: "" | log_mel: frames as `local_condition` (a vocoder)
    num_mels: int = 20  # log_mel: bands (= model.params.local_condition_dim)
    feature_hop: int = 80  # log_mel: samples per frame (= model.params.local_hop)
    batch_size: int = 8  # global batch size
    shuffle_buffer: int = 256
    seed: int = 0
    examples_dir: str = ""  # set by the runner: the validated Examples artifact
    embedder_dir: str = ""  # set by the runner: the Embedder artifact (vector conditions)


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    max_bad_fraction: float = 0.05  # fail if more records than this break the schema
    min_length: int = 1  # audio samples / tokens / positions
    max_length: int = 10_000_000
    allowed_sample_rates: list = dataclasses.field(default_factory=list)  # [] = any


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    family: str = "wavenet"  # a keras_ar.models class: wavenet | causal_transformer | ...
    params: dict = dataclasses.field(default_factory=dict)  # constructor keyword arguments


@dataclasses.dataclass(frozen=True)
class EmbeddingConfig:
    model: str = ""  # "" (none) | label_classifier: images -> vector `global_condition`
    dim: int = 16  # embedding size (= model.params.global_condition_dim)
    steps: int = 300  # classifier training steps on the train split
    learning_rate: float = 1e-3


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    strategy: str = "default"  # default | mirrored | multi_worker | tpu
    devices: list = dataclasses.field(default_factory=list)  # mirrored: [] = all local
    tpu: str = ""  # tpu: cluster resolver address ("" = local/auto)
    steps: int = 200
    steps_per_epoch: int = 50  # BackupAndRestore saves at each epoch end
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"  # constant | warmup_cosine (0 -> learning_rate -> cosine)
    warmup_steps: int = 0  # warmup_cosine: linear warm-up steps from 0 to learning_rate
    min_learning_rate: float = 0.0  # warmup_cosine: the rate the cosine reaches at `steps`
    ema_momentum: float = 0.99  # 0 disables EMA weights
    mixed_precision: str = ""  # "" | mixed_float16 | mixed_bfloat16
    jit_compile: bool = False
    seed: int = 0
    verbose: int = -1  # -1: a progress bar on a TTY, else 2; 0 silent, 1 bar, 2 line/epoch
    validation_batches: int = 4  # eval-split batches scored per epoch (0: none)
    early_stopping_patience: int = 0  # epochs without validation gain before stopping (0: off)
    early_stopping_min_delta: float = 0.0  # bits/position (nats/example if lengths vary)


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    max_batches: int = 20  # test batches scored
    max_bits_per_sample: float = 8.0  # absolute threshold for the blessing
    max_regression: float = 0.0  # bits/sample the candidate may lose vs the pushed model
    beat_unigram: bool = True  # discrete data: must score below the train split's unigram


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    targets: list = dataclasses.field(default_factory=lambda: ["savedmodel", "tflite", "onnx"])
    verify_parity: bool = True
    parity_steps: int = 64  # sample_step steps compared, as `keras-ar export verify` does
    allow_missing_targets: bool = False  # True: push without a target that fails the gate


@dataclasses.dataclass(frozen=True)
class PushConfig:
    serving_base_path: str = ""  # TF Serving model base path; relative paths: to the cwd
    model_name: str = "model"


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    num_samples: int = 2  # rows per export target (speaker i % num_speakers)
    num_steps: int = 4000  # samples / tokens per row
    temperature: float = 1.0
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    name: str = "pipeline"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    validation: ValidationConfig = dataclasses.field(default_factory=ValidationConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    embedding: EmbeddingConfig = dataclasses.field(default_factory=EmbeddingConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    push: PushConfig = dataclasses.field(default_factory=PushConfig)
    generation: GenerationConfig = dataclasses.field(default_factory=GenerationConfig)


MODALITIES = ("audio", "tokens", "images", "sequences")
MODEL_FAMILIES = {  # config name -> keras_ar.models attribute
    "wavenet": "WaveNet",
    "causal_transformer": "CausalTransformer",
    "continuous_sequence": "ContinuousSequenceModel",
    "pixel_cnn": "PixelCNN",
    "gated_pixel_cnn": "GatedPixelCNN",
    "pixel_cnn_plus_plus": "PixelCNNPlusPlus",
}
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def load(path, overrides=None):
    """Read `path` (YAML mapping) into a `PipelineConfig`; `overrides` {"a.b": value}."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path} (cwd {os.getcwd()}). Pass the path "
                          "of a YAML file such as pipelines/configs/speech_wavenet.yaml.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if raw is None:
        raw = {}
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    return from_dict(raw, where=str(path))


def from_dict(raw, where="<config>"):
    config = _build(PipelineConfig, raw, where, "")
    _check_values(config, where)
    _check_references(config, where)
    return config


def _check_references(config, where):
    """`data.source`, `model.family` and `model.params` name things that exist, checked
    before any component runs (a typo must not fail only after the ingest)."""
    import inspect

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
    accepted = {name for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self"}
    unknown = sorted(set(config.model.params) - accepted)
    if unknown:
        raise ConfigError(f"{where}: `model.params` {unknown} are not arguments of "
                          f"{cls.__name__}; it takes {sorted(accepted)}.")
    if config.data.modality == "audio" and family == "wavenet":
        _check_audio_levels(config, cls, where)


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


def _check_local_features(config, fail):
    data = config.data
    if not data.local_features:
        return
    if data.local_features != "log_mel":
        fail("data.local_features", data.local_features, "'' or 'log_mel'")
    if data.modality != "audio":
        fail("data.local_features", data.local_features,
             f"'' for data.modality {data.modality!r} (features are computed from audio)")
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
    if not embedding.model:
        return
    if embedding.model != "label_classifier":
        fail("embedding.model", embedding.model, "'' or 'label_classifier'")
    if data.modality != "images":
        fail("embedding.model", embedding.model,
             f"'' for data.modality {data.modality!r} (the classifier embeds images)")
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


def to_dict(config):
    return dataclasses.asdict(config)


def _set_dotted(raw, dotted, value):
    node = raw
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _build(cls, raw, where, prefix):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: `{prefix or '<top level>'}` must be a mapping; received "
                          f"{type(raw).__name__} {raw!r}.")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {[prefix + k for k in unknown]}; known keys "
                          f"in `{prefix.rstrip('.') or '<top level>'}`: {sorted(known)}.")
    values = {}
    for name, value in raw.items():
        values[name] = _convert(hints[name], value, where, prefix + name)
    return cls(**values)


def _convert(kind, value, where, key):
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, where, key + ".")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{where}: `{key}` must be {kind.__name__}; received "
                          f"{type(value).__name__} {value!r}.")
    return value


def _check_values(config, where):
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
    if not 0.0 <= config.validation.max_bad_fraction <= 1.0:
        fail("validation.max_bad_fraction", config.validation.max_bad_fraction, "in [0, 1]")


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
