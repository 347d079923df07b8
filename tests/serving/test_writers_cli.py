"""Writers and the generate CLI (the import boundary of serving/ is tests/test_import_rules.py)."""

import struct
import wave
import zlib

import numpy as np

from pipelines import cli
from serving import writers


def _read_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(
            kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    w, h, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {0: 1, 2: 3, 6: 4}[color]
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[r * (w * channels + 1) + 1:(r + 1) * (w * channels + 1)] for r in range(h)]
    return np.frombuffer(b"".join(rows), np.uint8).reshape(h, w, channels)


def test_png_grid_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3, 3)).astype(np.uint8)
    grid = writers.image_grid(images, columns=3)
    writers.write_png(tmp_path / "g.png", grid)
    back = _read_png(tmp_path / "g.png")
    np.testing.assert_array_equal(back, grid)
    np.testing.assert_array_equal(back[5:9, 4:7], images[4])


def test_wav_is_16_bit_and_mu_law_decodes_to_the_range(tmp_path):
    audio = writers.decode_audio(np.arange(256), 256, mu_law=True)
    assert audio[0] == -1 and audio[-1] == 1 and np.all(np.diff(audio) > 0)
    writers.write_wav(tmp_path / "a.wav", audio, 8000)
    with wave.open(str(tmp_path / "a.wav")) as f:
        assert (f.getsampwidth(), f.getframerate(), f.getnframes()) == (2, 8000, 256)


def test_generate_cli_writes_text_and_resumes(model_root, tmp_path):
    saved = str(model_root / "wavenet" / "1")
    base = ["generate", "--model", saved, "--backend", "savedmodel", "--num_steps", "12",
            "--batch_size", "2", "--seed", "4"]
    assert cli.main(base + ["--out", str(tmp_path / "full.txt")]) == 0
    assert cli.main(base + ["--max_steps", "5", "--save_state", str(tmp_path / "run.npz"),
                            "--chunk-size", "3", "--out", str(tmp_path / "part.txt")]) == 0
    assert cli.main(base + ["--resume", str(tmp_path / "run.npz"), "--chunk-size", "4",
                            "--out", str(tmp_path / "resumed.txt")]) == 0
    assert cli.main(base + ["--chunk-size", "1", "--out", str(tmp_path / "steps.txt")]) == 0
    full = (tmp_path / "full.txt").read_text().split("\n")
    assert (tmp_path / "resumed.txt").read_text().split("\n") == full
    assert (tmp_path / "steps.txt").read_text().split("\n") == full
    assert len(full[0].split()) == 12

