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


@pytest.mark.slow
def test_a_bad_data_file_and_an_unusable_root_print_one_line(tmp_path):
    """The CLI prints one line naming the file (Beam's per-element traceback log is off; the
    traceback is saved under <root>/errors/), and a pipeline root that is a file is named."""
    import subprocess
    import sys

    folder = tmp_path / "wavs" / "speaker"
    folder.mkdir(parents=True)
    (folder / "bad.wav").write_bytes(b"not a wav")
    config = tmp_path / "bad.yaml"
    config.write_text(
        "name: bad\ndata: {source: audio_folder, modality: audio, window: 256, "
        f"use_speaker: false, options: {{path: {tmp_path / 'wavs'}}}}}\n"
        "model: {family: wavenet, params: {num_classes: 256, dilations: [1]}}\n")

    def run(root):
        return subprocess.run([sys.executable, "-m", "pipelines.cli", "pipeline", "run",
                               str(config), "--pipeline-root", str(root)],
                              capture_output=True, text=True, timeout=300)

    failed = run(tmp_path / "root")
    assert failed.returncode == 2
    lines = [line for line in failed.stderr.splitlines() if line.startswith("keras-ar")]
    assert len(lines) == 1 and "bad.wav" in lines[0] and "ExampleGen failed" in lines[0]
    assert "Traceback" not in failed.stderr
    assert list((tmp_path / "root" / "errors").glob("ExampleGen-*.txt"))
    (tmp_path / "a_file").write_text("x")
    blocked = run(tmp_path / "a_file" / "root")
    assert blocked.returncode == 2 and "Traceback" not in blocked.stderr
    assert "cannot use the pipeline root: Not a directory" in blocked.stderr
