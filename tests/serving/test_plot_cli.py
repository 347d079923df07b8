"""`keras-ar plot spectrogram | sequence`: valid PNGs from real files, one-line errors naming
bad input, and the STFT the spectrogram draws."""

import subprocess
import sys

import numpy as np
import pytest

from pipelines import cli
from serving import plots, writers
from tests.serving.conftest import REPO


def _png_size(path):
    """(width, height) from a PNG's IHDR; the file must carry the PNG signature."""
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()  # checks the chunks' CRCs
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _tone(path, hz, rate, seconds=0.5):
    t = np.arange(int(rate * seconds)) / rate
    writers.write_wav(path, 0.5 * np.sin(2 * np.pi * hz * t), rate)
    return str(path)


def test_stft_peaks_at_the_tone_and_spans_eighty_db():
    rate, hz = 8000, 1000
    t = np.arange(rate) / rate
    db = plots.stft_db(np.sin(2 * np.pi * hz * t), rate)  # (F, N)
    assert db.shape[0] == int(round(plots.FRAME_S * rate)) // 2 + 1
    peak = db.mean(axis=1).argmax() * rate / 2 / (db.shape[0] - 1)
    assert abs(peak - hz) <= rate / (2 * (db.shape[0] - 1))
    assert db.max() == 0 and db.min() == -plots.RANGE_DB


def test_spectrogram_png_of_two_rates(tmp_path):
    low = _tone(tmp_path / "low.wav", 500, 8000)
    high = _tone(tmp_path / "high.wav", 3000, 22050)
    out = tmp_path / "figs" / "speech.png"
    assert cli.main(["plot", "spectrogram", low, high, "--seconds", "0.25",
                     "--titles", "generated,real", "--out", str(out)]) == 0
    width, height = _png_size(out)
    assert width > 2 * height > 0 and out.stat().st_size < 200_000
    assert not list(out.parent.glob("*.tmp*"))  # written atomically


def test_sequence_png_from_generate_npz_files(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "gen.npz", x=rng.normal(size=(3, 10, 4)), lengths=[10, 4, 7])
    np.savez(tmp_path / "real.npz", x=rng.normal(size=(5, 8, 4)))  # lengths: all frames
    out = tmp_path / "seq.png"
    assert cli.main(["plot", "sequence", str(tmp_path / "gen.npz"), str(tmp_path / "real.npz"),
                     "--dims", "0,3", "--rows", "2", "--out", str(out)]) == 0
    width, height = _png_size(out)
    assert width > 0 and height > 0


@pytest.fixture
def files(tmp_path):
    _tone(tmp_path / "a.wav", 440, 8000)
    np.savez(tmp_path / "a.npz", x=np.zeros((2, 5, 3)), lengths=[5, 3])
    np.savez(tmp_path / "no_x.npz", y=np.zeros(3))
    np.savez(tmp_path / "bad_lengths.npz", x=np.zeros((2, 5, 3)), lengths=[5])
    (tmp_path / "text.wav").write_text("not audio")
    import wave

    with wave.open(str(tmp_path / "eight_bit.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(100))
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["spectrogram", "{d}/a.wav", "--out", "{d}/x.jpg"], "ending in .png"),
    (["spectrogram", "{d}/missing.wav", "--out", "{d}/x.png"], "missing.wav does not exist"),
    (["spectrogram", "{d}/a.npz", "--out", "{d}/x.png"], "expected a .wav file"),
    (["spectrogram", "{d}/text.wav", "--out", "{d}/x.png"], "not a readable WAV file"),
    (["spectrogram", "{d}/eight_bit.wav", "--out", "{d}/x.png"], "8-bit samples"),
    (["spectrogram", "{d}/a.wav", "--seconds", "0", "--out", "{d}/x.png"], "--seconds 0.0"),
    (["spectrogram", "{d}/a.wav", "--titles", "a,b", "--out", "{d}/x.png"],
     "--titles has 2 titles for 1 files"),
    (["sequence", "{d}/no_x.npz", "--out", "{d}/x.png"], "holds ['y']; expected `x`"),
    (["sequence", "{d}/bad_lengths.npz", "--out", "{d}/x.png"], "`lengths` [1]"),
    (["sequence", "{d}/a.npz", "--dims", "0,3", "--out", "{d}/x.png"],
     "[3] out of range; the sequences have 3 features"),
    (["sequence", "{d}/a.npz", "--dims", "first", "--out", "{d}/x.png"], "--dims 'first'"),
    (["sequence", "{d}/a.npz", "--rows", "0", "--out", "{d}/x.png"], "--rows 0"),
    (["sequence", "{d}/a.wav", "--out", "{d}/x.png"], "expected a .npz file"),
])
def test_bad_input_is_refused_in_one_line(files, capsys, args, message):
    argv = ["plot"] + [a.format(d=files) for a in args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith(f"keras-ar plot {args[0]}: error:")
    assert len(err.splitlines()) == 1
    assert not (files / "x.png").exists()


def test_importing_the_plot_command_loads_no_tensorflow_or_matplotlib():
    code = ("import sys, serving.plot_cli, serving.plots, serving.image_prompt; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'matplotlib', 'PIL')]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
