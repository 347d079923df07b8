"""Pipeline configuration: YAML (`yaml.safe_load` only) validated into typed dataclasses.

Every field has a type and a default; `load(path)` rejects unknown keys, wrong types and
missing files with an error that names the file, the dotted key, what was received and what
is expected. Sections map to components: `data` (ExampleGen, input pipelines), `validation`
(DataValidator), `model` + `training` (Trainer), `evaluation` (Evaluator), `export`
(Exporter), `push` (Pusher), `generation` (SampleGen); `metadata` is the ML Metadata store
(SQLite or MySQL) the runner records into; `beam` picks the Apache Beam runner of ExampleGen
and DataValidator (`pipelines/beam_options.py`).
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
    modality: str = "audio"  # audio | tokens | images | sequences | pairs (= the source's)
    options: dict = dataclasses.field(default_factory=dict)  # passed to the source adapter
    max_examples: int = 0  # 0: all the source offers
    num_shards: int = 2  # TFRecord shards per split
    eval_percent: int = 10  # split by a stable hash of each record's key
    test_percent: int = 10
    sample_rate: int = 8000  # audio: model rate (resampled in the graph)
    window: int = 2048  # audio samples / tokens per training example (random crop); pairs:
    # target positions per example (characters + stop, padded with the stop id)
    source_window: int = 0  # pairs: source ids per example (= model.params.max_source_length)
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
    workers: int = 0  # multi_worker: N local worker processes; 0 = TF_CONFIG from the env
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
    max_per: float = 0.0  # pairs: greedy decoding's phoneme error rate must be <= this (0: off)


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
class MysqlConfig:
    host: str = ""  # "" = not used; e.g. 127.0.0.1
    port: int = 3306
    database: str = ""
    user: str = ""
    password_env: str = ""  # the environment variable holding the password ("" = none)


@dataclasses.dataclass(frozen=True)
class MetadataConfig:
    sqlite: str = ""  # "" = <pipeline_root>/metadata.sqlite; relative paths: to the cwd
    mysql: MysqlConfig = dataclasses.field(default_factory=MysqlConfig)  # host set: MySQL


@dataclasses.dataclass(frozen=True)
class BeamConfig:
    runner: str = "DirectRunner"  # DirectRunner | DaskRunner | FlinkRunner | ... (any Beam runner)
    options: dict = dataclasses.field(default_factory=dict)  # Beam pipeline options by flag name


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
    metadata: MetadataConfig = dataclasses.field(default_factory=MetadataConfig)
    beam: BeamConfig = dataclasses.field(default_factory=BeamConfig)


MODALITIES = ("audio", "tokens", "images", "sequences", "pairs")
MODEL_FAMILIES = {  # config name -> keras_ar.models attribute
    "wavenet": "WaveNet",
    "causal_transformer": "CausalTransformer",
    "continuous_sequence": "ContinuousSequenceModel",
    "pixel_cnn": "PixelCNN",
    "gated_pixel_cnn": "GatedPixelCNN",
    "pixel_cnn_plus_plus": "PixelCNNPlusPlus",
    "byte_net": "ByteNet",
    "encoder_decoder_transformer": "EncoderDecoderTransformer",
}
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def load(path, overrides=None):
    """Read `path` (YAML mapping) into a `PipelineConfig`; `overrides` {"a.b": value}."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path} (cwd {os.getcwd()}). Pass the path "
                          "of a YAML file such as pipelines/configs/speech_wavenet.yaml.")
    try:
        raw = safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if raw is None:
        raw = {}
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    return from_dict(raw, where=str(path))


MAX_YAML_ALIASES = 20


def safe_load(text):
    """`yaml.safe_load` with at most `MAX_YAML_ALIASES` alias references (`*name`): an alias
    bomb (aliases of aliases, exponential when expanded) is refused before it is built."""
    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                Loader.aliases += 1
                if Loader.aliases > MAX_YAML_ALIASES:
                    raise ConfigError(f"The YAML uses more than {MAX_YAML_ALIASES} aliases "
                                      "(*name); write the values out instead.")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=Loader)


def from_dict(raw, where="<config>"):
    config = _build(PipelineConfig, raw, where, "")
    from pipelines import config_checks

    config_checks.check(config, where)
    return config


def to_dict(config):
    return dataclasses.asdict(config)


def _set_dotted(raw, dotted, value):
    node = raw
    *parents, leaf = dotted.split(".")
    for depth, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            where = ".".join(parents[:depth + 1])
            raise ConfigError(f"Override {dotted!r}: `{where}` is a {type(node).__name__} "
                              f"({node!r}), not a section; set `{where}` itself or a key of a "
                              "section (e.g. training.steps=50).")
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
