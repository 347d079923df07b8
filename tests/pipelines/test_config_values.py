"""Every config value is checked when the file loads: finite numbers, ranges, known export
targets, overrides that name a section, and YAML alias bombs refused."""

import pathlib

import pytest

from pipelines import config as config_lib
from pipelines import pipeline_cli

SPEECH = pathlib.Path(__file__).parents[2] / "pipelines" / "configs" / "speech_wavenet.yaml"


@pytest.mark.parametrize("key, value, message", [
    ("training.learning_rate", float("nan"), "training.learning_rate` = nan"),
    ("evaluation.max_bits_per_sample", float("inf"), "a finite number"),
    ("data.eval_percent", -5, "data.eval_percent` = -5 is invalid; expected a number >= 0"),
    ("generation.temperature", -1.0, "generation.temperature"),
    ("generation.num_steps", 0, "generation.num_steps"),
    ("export.targets", ["savedmodel", "coreml"], "distinct targets from"),
    ("export.targets", [], "non-empty list"),
    ("validation.min_length", 10**9, "at most validation.max_length"),
])
def test_bad_values_are_refused_at_load(key, value, message):
    with pytest.raises(config_lib.ConfigError, match=message.replace("[", r"\[")):
        config_lib.load(SPEECH, overrides={key: value})


def test_an_override_through_a_scalar_names_the_key():
    with pytest.raises(config_lib.ConfigError, match="`name` is a str"):
        config_lib.load(SPEECH, overrides={"name.x": 1})


def test_set_flag_errors_name_the_key(tmp_path):
    import argparse

    args = argparse.Namespace(config=str(SPEECH), set=["training.steps=[1, 2"],
                              serving_base_path=None, pipeline_root=str(tmp_path))
    with pytest.raises(config_lib.ConfigError, match="--set training.steps"):
        pipeline_cli.load_config(args)


def test_yaml_alias_bombs_are_refused_quickly(tmp_path):
    import time

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    with pytest.raises(config_lib.ConfigError, match="more than 20 aliases"):
        config_lib.load(path)
    assert time.perf_counter() - start < 2.0
    few = tmp_path / "few.yaml"  # ordinary anchors still work
    few.write_text(SPEECH.read_text() + "\nx_anchor: &lr 0.002\ny_alias: *lr\n")
    with pytest.raises(config_lib.ConfigError, match="unknown key"):
        config_lib.load(few)
