"""Log-mel local features: the graph equals the NumPy twin, frames align with crops, the
config ties them to the model, and a vocoder WaveNet runs the pipeline: parity-gated
SavedModel and TFLite (the in-graph loop and the host chunk loop) generate the same audio
from a test clip's frames. Every target end to end: test_linear16_pipeline (audio),
test_text_pipeline, test_g2p_pipeline."""

import json
import wave

import numpy as np
import pytest
import tensorflow as tf

from keras_ar import contract
from pipelines import config as config_lib
from pipelines import runner
from pipelines.data import features, make_dataset
from serving import audio_features
from tests.pipelines import helpers

MEL_WAVENET = dict(helpers.TINY_WAVENET, local_condition_dim=6, local_hop=16,
                   local_upsample="repeat")
MEL_DATA = dict(local_features="log_mel", num_mels=6, feature_hop=16)


def test_graph_features_equal_the_numpy_twin_and_count_frames():
    rng = np.random.default_rng(0)
    for length in (1, 79, 80, 81, 1234):
        audio = (0.3 * rng.standard_normal(length)).astype(np.float32)
        graph = features.log_mel(tf.constant(audio), 8000, 80, 20).numpy()
        host = audio_features.log_mel(audio, 8000, 80, 20)
        assert graph.shape == host.shape == (-(-length // 80), 20)
        np.testing.assert_allclose(graph, host, atol=2e-5)
    silence = features.log_mel(tf.zeros([400]), 8000, 80, 20).numpy()
    np.testing.assert_allclose(silence, features.silence_value(), atol=1e-6)


def test_frames_follow_the_signal_in_time_and_frequency():
    rate, hop = 8000, 80
    t = np.arange(1600) / rate
    audio = np.where(t < 0.1, 0.5 * np.sin(2 * np.pi * 200 * t), 0.5 * np.sin(
        2 * np.pi * 3000 * t)).astype(np.float32)
    frames = audio_features.log_mel(audio, rate, hop, 20)
    assert frames[3].argmax() < 5 and frames[16].argmax() > 15  # low tone, then high
    assert np.isclose(audio_features.num_frames(1600, hop), len(frames))


def test_wav_features_check_the_rate(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(helpers.wav_bytes(np.zeros(160), 16000))
    description = audio_features.describe("log_mel", 8000, 80, 20)
    with pytest.raises(ValueError, match="16000 Hz.*8000 Hz.*sox"):
        audio_features.from_wav(path, description)
    path.write_bytes(helpers.wav_bytes(0.1 * np.ones(160), 8000))
    assert audio_features.from_wav(path, description).shape == (2, 20)


def test_crops_carry_the_frames_of_their_samples(tmp_path):
    """A crop starts on a frame, and its frames are the whole clip's frames from there."""
    examples = helpers.write_examples(tmp_path / "ex", count=(6, 2, 2))
    whole = [{k: v.numpy()[0] for k, v in b.items()} for b in make_dataset(
        helpers.data_config(examples, window=4096, batch_size=1, **MEL_DATA), "train",
        repeat=False)]
    data = helpers.data_config(examples, window=64, **MEL_DATA)
    batch = next(iter(make_dataset(data, "train")))
    x, local = batch[contract.X].numpy(), batch[contract.LOCAL_CONDITION].numpy()
    assert local.shape == (4, 4, 6) and local.dtype == np.float32
    starts = set()
    for row in range(4):
        found = [(clip, start) for clip in whole for start in range(0, 4096 - 64, 16)
                 if np.array_equal(clip[contract.X][start:start + 64], x[row])]
        assert found, "the crop is no frame-aligned piece of a clip"
        clip, start = found[0]
        np.testing.assert_allclose(local[row],  # float32 FFT rounding: ~3e-5
                                   clip[contract.LOCAL_CONDITION][start // 16:][:4], atol=2e-4)
        starts.add(start)
    assert len(starts) > 1  # random offsets, not always the first frame
    test = next(iter(make_dataset(data, "test")))  # eval/test: the clip's first frames
    assert test[contract.LOCAL_CONDITION].shape == (2, 4, 6)


def test_config_ties_features_to_the_model(tmp_path):
    def load(**data):
        return helpers.pipeline_config(tmp_path, data__local_features=data.get(
            "local_features", "log_mel"), data__num_mels=data.get("num_mels", 6),
            data__feature_hop=16, model__params=MEL_WAVENET, data__window=256)

    assert load().data.local_features == "log_mel"
    with pytest.raises(config_lib.ConfigError, match="local_condition_dim. = 6 is invalid; "
                       "expected 8 .data.num_mels"):
        load(num_mels=8)
    with pytest.raises(config_lib.ConfigError, match="'' or 'log_mel'"):
        load(local_features="mfcc")
    with pytest.raises(config_lib.ConfigError, match="multiple of data.feature_hop"):
        helpers.pipeline_config(tmp_path, data__local_features="log_mel", data__num_mels=6,
                                data__feature_hop=16, model__params=MEL_WAVENET,
                                data__window=250)


@pytest.mark.slow
def test_vocoder_pipeline_generates_from_test_clip_frames(tmp_path):
    config = helpers.pipeline_config(
        tmp_path, data__local_features="log_mel", data__num_mels=6, data__feature_hop=16,
        model__params=MEL_WAVENET, export__targets=["savedmodel", "tflite"],
        export__verify_parity=True, generation__num_steps=40)
    report = {name: outputs for name, _, outputs in
              runner.run(config, tmp_path / "root", logger=lambda m: None)}
    exported = report["Exporter"]["exported_model"].path / "export"
    decoding = json.loads((exported / "generation_spec.json").read_text())["decoding"]
    assert decoding["local_features"]["hop"] == 16 and decoding["local_features"]["num_mels"] == 6
    samples = report["SampleGen"]["samples"].path
    summary = json.loads((samples / "samples.json").read_text())
    assert len(summary["references"]) == 2  # one test clip per speaker
    rows = {}
    for target in ("savedmodel", "tflite"):
        files = sorted(samples.glob(f"{target}_*.wav"))
        assert len(files) == 2
        with wave.open(str(files[0])) as w:
            rows[target] = w.readframes(40)
    assert rows["savedmodel"] == rows["tflite"]  # same noise, same frames
    parity = json.loads((exported.parent / "export_report.json").read_text())["parity"]
    assert {row[0] for row in parity} == {"savedmodel", "tflite"} and all(
        row[-1] for row in parity)
