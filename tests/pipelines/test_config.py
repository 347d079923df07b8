"""Config files: typed dataclasses, clear errors for unknown keys, wrong types, missing files."""

import pathlib

import pytest

from pipelines import config as config_lib

CONFIGS = pathlib.Path(__file__).parents[2] / "pipelines" / "configs"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_configs_load(name):
    config = config_lib.load(CONFIGS / name)
    assert isinstance(config.data, config_lib.DataConfig)
    assert config.push.serving_base_path


def test_unknown_key_names_it_and_the_known_ones(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  windw: 10\n")
    with pytest.raises(config_lib.ConfigError, match=r"c.yaml.*data.windw.*window"):
        config_lib.load(path)


def test_wrong_type_names_key_value_and_expected_type(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  steps: many\n")
    with pytest.raises(config_lib.ConfigError, match=r"training.steps.*int.*'many'"):
        config_lib.load(path)


def test_missing_file_and_bad_values(tmp_path):
    with pytest.raises(config_lib.ConfigError, match="not found"):
        config_lib.load(tmp_path / "nope.yaml")
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  strategy: magic\n")
    with pytest.raises(config_lib.ConfigError, match="training.strategy.*magic"):
        config_lib.load(path)


def test_yaml_tags_are_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(config_lib.ConfigError, match="not valid YAML"):
        config_lib.load(path)


def test_overrides_are_typed(tmp_path):
    config = config_lib.load(CONFIGS / "speech_wavenet.yaml", {"training.steps": 7})
    assert config.training.steps == 7
    with pytest.raises(config_lib.ConfigError, match="training.steps"):
        config_lib.load(CONFIGS / "speech_wavenet.yaml", {"training.steps": "7"})


@pytest.mark.parametrize("override, message", [
    ({"model.family": "wavenett"}, r"`model.family` = 'wavenett' is unknown.*'wavenet'"),
    ({"model.params.dilationz": [1, 2]}, r"`model.params` \['dilationz'\] are not arguments "
                                         r"of WaveNet"),
    ({"data.source": "espeek"}, r"`data.source` = 'espeek' is unknown.*'espeak'"),
])
def test_families_params_and_sources_are_checked_at_load(override, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.load(CONFIGS / "speech_wavenet.yaml", override)


def test_linear_16_bit_config_loads_and_model_must_agree_with_the_data():
    config = config_lib.load(CONFIGS / "speech_wavenet_linear16.yaml")
    assert config.data.audio_encoding == "linear"
    assert config.data.quantization_channels == 65536
    assert config.model.params["head"] == "logistic_mixture"
    with pytest.raises(config_lib.ConfigError, match=r"mu_law.*audio_encoding.*'linear'"):
        config_lib.load(CONFIGS / "speech_wavenet_linear16.yaml", {"model.params.mu_law": True})
    with pytest.raises(config_lib.ConfigError, match=r"num_classes. = 256.*65536"):
        config_lib.load(CONFIGS / "speech_wavenet_linear16.yaml",
                        {"model.params.num_classes": 256})
    with pytest.raises(config_lib.ConfigError, match=r"audio_encoding.*'alaw'"):
        config_lib.load(CONFIGS / "speech_wavenet.yaml", {"data.audio_encoding": "alaw"})


@pytest.mark.parametrize("training, message", [
    ({"lr_schedule": "cosine"}, r"`training.lr_schedule` = 'cosine' is invalid; expected one "
                                r"of \['constant', 'warmup_cosine'\]"),
    ({"lr_schedule": "warmup_cosine", "steps": 10, "warmup_steps": 10},
     r"`training.warmup_steps` = 10 is invalid; expected an integer in \[0, training.steps "
     r"= 10\)"),
    ({"warmup_steps": 5}, r"`training.warmup_steps` = 5.*0 unless training.lr_schedule is "
                          r"'warmup_cosine'"),
    ({"lr_schedule": "warmup_cosine", "learning_rate": 0.001, "min_learning_rate": 0.01},
     r"`training.min_learning_rate` = 0.01.*\[0, training.learning_rate = 0.001\]"),
    ({"learning_rate": 0.0}, r"`training.learning_rate` = 0.0.*> 0"),
    ({"early_stopping_patience": -1}, r"`training.early_stopping_patience` = -1.*>= 0"),
    ({"early_stopping_min_delta": -0.1}, r"`training.early_stopping_min_delta` = -0.1"),
    ({"early_stopping_patience": 2, "validation_batches": 0},
     r"`training.early_stopping_patience` = 2 is invalid; expected 0 when "
     r"training.validation_batches is 0.*set validation_batches >= 1"),
])
def test_schedule_and_early_stopping_values_are_checked_at_load(training, message):
    overrides = {f"training.{key}": value for key, value in training.items()}
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.load(CONFIGS / "speech_wavenet.yaml", overrides)


def test_schedule_and_early_stopping_defaults_keep_todays_training():
    training = config_lib.load(CONFIGS / "speech_wavenet.yaml").training
    assert (training.lr_schedule, training.warmup_steps, training.min_learning_rate) == (
        "constant", 0, 0.0)
    assert training.early_stopping_patience == 0
    shipped = config_lib.load(CONFIGS / "text_transformer.yaml").training
    assert shipped.lr_schedule == "warmup_cosine" and 0 < shipped.warmup_steps < shipped.steps
    ok = config_lib.load(CONFIGS / "speech_wavenet.yaml", {
        "training.lr_schedule": "warmup_cosine", "training.warmup_steps": 10,
        "training.min_learning_rate": 1e-5, "training.early_stopping_patience": 2,
        "training.early_stopping_min_delta": 0.01}).training
    assert ok.warmup_steps == 10 and ok.early_stopping_patience == 2
