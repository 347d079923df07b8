"""`keras-ar generate --local-condition`: frames from a .npy file or computed from a WAV as
the manifest's `decoding.local_features` says, and a clear error otherwise."""

import numpy as np
import pytest

from keras_ar import contract
from pipelines import cli
from serving import audio_features, writers
from serving.backend import make_backend
from serving.generator import Generator
from tests.serving import artifacts

DESCRIPTION = audio_features.describe("log_mel", 8000, 16, 6)


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory):
    model = artifacts.tiny_wavenet(seed=4, local_condition_dim=6, local_hop=16,
                                   local_upsample="repeat",
                                   metadata={"sample_rate": 8000,
                                             "local_features": DESCRIPTION})
    root = tmp_path_factory.mktemp("vocoder")
    artifacts.export_tflite(model, root / "tflite", signatures=(
        contract.INIT_STATE, contract.PREFILL, contract.SAMPLE_STEP, contract.SAMPLE_CHUNK))
    return root / "tflite"


def _generate(model, out, condition, *extra):
    return cli.main(["generate", "--model", str(model), "--num-steps", "48", "--seed", "1",
                     "--local-condition", str(condition), "--out", str(out), *extra])


def test_a_wav_gives_the_frames_of_its_log_mel(vocoder, tmp_path):
    t = np.arange(48) / 8000
    speech = 0.4 * np.sin(2 * np.pi * 300 * t)
    writers.write_wav(tmp_path / "in.wav", speech, 8000)
    frames = audio_features.from_wav(tmp_path / "in.wav", DESCRIPTION)
    np.save(tmp_path / "frames.npy", frames)
    assert _generate(vocoder, tmp_path / "from_wav.npz", tmp_path / "in.wav") == 0
    assert _generate(vocoder, tmp_path / "from_npy.npz", tmp_path / "frames.npy") == 0
    from_wav = np.load(tmp_path / "from_wav.npz")["x"]
    np.testing.assert_array_equal(from_wav, np.load(tmp_path / "from_npy.npz")["x"])
    direct = Generator(make_backend("tflite", vocoder)).generate(
        48, batch_size=1, seed=1, conditions={"local_condition": frames[None]})
    np.testing.assert_array_equal(from_wav, direct["x"])
    silent = np.full_like(frames, audio_features.silence_value())
    np.save(tmp_path / "silent.npy", silent)
    assert _generate(vocoder, tmp_path / "silent.npz", tmp_path / "silent.npy") == 0
    assert not np.array_equal(np.load(tmp_path / "silent.npz")["x"], from_wav)


def test_bad_local_conditions_say_what_is_wrong(vocoder, tmp_path, capsys):
    writers.write_wav(tmp_path / "fast.wav", np.zeros(96), 16000)
    assert _generate(vocoder, tmp_path / "a.npz", tmp_path / "fast.wav") == 2
    assert "16000 Hz" in capsys.readouterr().err
    assert _generate(vocoder, tmp_path / "a.npz", tmp_path / "missing.npy") == 2
    assert "does not exist" in capsys.readouterr().err
    np.save(tmp_path / "short.npy", np.zeros((1, 6), np.float32))  # 48 steps need 3 frames
    assert _generate(vocoder, tmp_path / "a.npz", tmp_path / "short.npy") == 2
    assert "frames" in capsys.readouterr().err
