"""What `keras-ar generate` writes: the manifest's sample rate in the WAV header, every row
of the batch (named by speaker), `--out` as a directory, decoded text, a clear error for an
unknown extension or a missing artifact, and the backend inferred from the artifact."""

import wave

import numpy as np
import pytest

from export.saved_model import export_saved_model
from export.tflite import export_tflite
from keras_ar import contract
from pipelines import cli
from serving import generate_cli, writers
from serving.generation_spec import read_manifest
from tests.serving import artifacts

LOOP = (contract.INIT_STATE, contract.PREFILL, contract.SAMPLE_STEP, contract.SAMPLE_CHUNK)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """A tiny speaker-conditioned WaveNet whose metadata says 8 kHz and names 2 speakers."""
    model = artifacts.tiny_wavenet(seed=2, num_global_classes=2, metadata={
        "sample_rate": 8000, "speakers": ["en-us+m3", "en-gb+f2"]})
    root = tmp_path_factory.mktemp("speech")
    export_saved_model(model, root / "savedmodel", signatures=LOOP)
    export_tflite(model, root / "tflite", signatures=LOOP, saved_model_dir=root / "savedmodel")
    return root


def _generate(model_dir, out, *extra):
    return cli.main(["generate", "--model", str(model_dir), "--num_steps", "40",
                     "--batch_size", "2", "--seed", "3", "--global_condition", "0,1",
                     "--out", str(out), *extra])


def test_manifest_carries_the_decoding_metadata(speech):
    decoding = read_manifest(speech / "tflite")["decoding"]
    assert decoding["sample_rate"] == 8000
    assert decoding["speakers"] == ["en-us+m3", "en-gb+f2"]


@pytest.mark.parametrize("target", ["savedmodel", "tflite"])
def test_every_row_is_a_wav_at_the_models_rate_named_by_speaker(speech, tmp_path, target):
    assert _generate(speech / target, tmp_path / "g.wav") == 0  # backend inferred
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["g_0_en-us+m3.wav", "g_1_en-gb+f2.wav"]
    for name in files:
        with wave.open(str(tmp_path / name)) as f:
            assert (f.getframerate(), f.getnframes(), f.getsampwidth()) == (8000, 40, 2)


def test_out_as_a_directory_and_the_same_samples_on_both_targets(speech, tmp_path):
    assert _generate(speech / "tflite", f"{tmp_path}/lite/") == 0
    assert _generate(speech / "savedmodel", f"{tmp_path}/saved/") == 0
    lite = sorted((tmp_path / "lite").iterdir())
    saved = sorted((tmp_path / "saved").iterdir())
    assert [p.name for p in lite] == ["sample_0_en-us+m3.wav", "sample_1_en-gb+f2.wav"]
    assert [p.read_bytes() for p in lite] == [p.read_bytes() for p in saved]


def test_unknown_extension_and_missing_artifact_are_one_line_errors(speech, tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"'\.mp3'.*\.wav, \.png, \.txt, \.npz"):
        _generate(speech / "tflite", tmp_path / "g.mp3")
    assert not list(tmp_path.iterdir())  # nothing written, no g.mp3.npz
    assert _generate(tmp_path / "nowhere", tmp_path / "g.wav") == 2
    assert "does not exist" in capsys.readouterr().err


def test_backend_inference(speech, tmp_path):
    assert generate_cli.infer_backend(str(speech / "savedmodel")) == "savedmodel"
    assert generate_cli.infer_backend(str(speech / "tflite")) == "tflite"
    assert generate_cli.infer_backend(str(speech / "tflite" / "model.tflite")) == "tflite"
    assert generate_cli.infer_backend("grpc://127.0.0.1:8500/m") == "tfserving"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no saved_model.pb"):
        generate_cli.infer_backend(str(tmp_path / "empty"))


def test_text_is_decoded(tmp_path):
    text = "héllo wörld".encode()
    x = np.array([list(text) + [0, 0]], np.int32)
    writers.write_text(tmp_path / "b.txt", x, [len(text)], text="bytes")
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo wörld\n"
    writers.write_text(tmp_path / "v.txt", np.array([[1, 0, 7]]), [3],
                       vocabulary=["the", "cat"])
    assert (tmp_path / "v.txt").read_text() == "cat the <unk>\n"


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("keras-ar ")


@pytest.mark.parametrize("conditions, message", [
    ({"global_condition": np.array([0, 2])}, r"holds \[0, 2\]; class ids in \[0, 2\)"),
    ({"global_condition": np.array([-1, 0])}, r"class ids in \[0, 2\)"),
    ({"global_condition": np.array([1])}, r"shape \[1\]; a batch of 2"),
    ({"speaker": np.array([0, 1])}, r"no condition `speaker`"),
])
def test_conditions_are_checked_against_the_manifest(speech, conditions, message):
    from serving.generator import Generator
    from serving.tflite_backend import TFLiteBackend

    generator = Generator(TFLiteBackend(speech / "tflite"))
    with pytest.raises(ValueError, match=message):
        generator.generate(5, batch_size=2, conditions=conditions)


def test_cli_names_a_bad_speaker_in_one_line(speech, tmp_path, capsys):
    rc = cli.main(["generate", "--model", str(speech / "tflite"), "--num-steps", "5",
                   "--batch-size", "2", "--global-condition", "0,7", "--out",
                   str(tmp_path / "g.wav")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "class ids in [0, 2)" in err and "Traceback" not in err


def test_progress_defaults_to_the_terminal_and_logs_are_quiet(monkeypatch):
    import argparse
    import logging
    import os

    parser = argparse.ArgumentParser()
    generate_cli.add_arguments(parser)
    base = ["--model", "m", "--num-steps", "1", "--out", "o.wav"]
    assert parser.parse_args(base).progress is None  # then: sys.stderr.isatty()
    assert parser.parse_args(base + ["--no-progress"]).progress is False
    assert parser.parse_args(base + ["--num_steps", "3"]).num_steps == 3  # old spelling
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv("KERAS_AR_BEAM_LOGS", raising=False)
    assert cli.main(["--version"]) == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert logging.getLogger("apache_beam").level == logging.WARNING


def test_generator_from_preset_infers_the_backend(speech):
    from serving.generator import Generator

    runs = {}
    for target in ("savedmodel", "tflite"):
        generator = Generator.from_preset(speech / target, chunk_size=16)
        assert generator.backend.name == target
        runs[target] = generator.generate(40, batch_size=2, seed=3, conditions={
            "global_condition": np.array([0, 1], np.int32)})["x"]
    np.testing.assert_array_equal(runs["savedmodel"], runs["tflite"])
    with pytest.raises(ValueError, match="Unknown backend 'torch'"):
        Generator.from_preset(speech / "tflite", backend="torch")
