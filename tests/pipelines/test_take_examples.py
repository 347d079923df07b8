"""`python -m pipelines.data.take_examples`: chosen examples of a split written as files."""

import io

import numpy as np
import pytest

from pipelines.data import records, take_examples
from serving import writers


def _write_split(root, modality, items, split="test"):
    import tensorflow as tf

    (root / split).mkdir(parents=True)
    with tf.io.TFRecordWriter(str(root / split / "data-00000-of-00001.tfrecord")) as out:
        for item in items:
            out.write(records.serialize(item, modality))
    return root


def _png(array):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _images(tmp_path):
    items = [{"key": f"k{i}", "image": _png(np.full((3, 2), i)), "label": label}
             for i, label in enumerate([2, 0, 2, 1, 0])]
    return _write_split(tmp_path / "examples", "images", items)


def test_labels_pick_the_first_examples_of_each_in_order(tmp_path):
    examples = _images(tmp_path)
    out = tmp_path / "picked.npy"
    take_examples.main(["--examples", str(examples), "--labels", "0,2,0,2",
                        "--out", str(out)])
    images = np.load(out)
    assert images.shape == (4, 3, 2, 1) and images.dtype == np.uint8
    assert images[:, 0, 0, 0].tolist() == [1, 0, 4, 2]  # label 0: #1, #4; label 2: #0, #2
    take_examples.main(["--examples", str(examples), "--count", "2", "--out", str(out)])
    assert np.load(out)[:, 0, 0, 0].tolist() == [0, 1]


def test_sequences_and_audio(tmp_path):
    seqs = [{"key": f"s{i}", "values": list(np.arange(2 * n, dtype=float)), "dim": 2,
             "label": i} for i, n in enumerate([3, 5])]
    examples = _write_split(tmp_path / "seq", "sequences", seqs)
    take_examples.main(["--examples", str(examples), "--labels", "1,0",
                        "--out", str(tmp_path / "s.npz")])
    data = np.load(tmp_path / "s.npz")
    assert data["x"].shape == (2, 5, 2) and data["lengths"].tolist() == [5, 3]
    assert data["global_condition"].tolist() == [1, 0]
    np.testing.assert_array_equal(data["x"][1, :3], np.arange(6).reshape(3, 2))
    assert np.all(data["x"][1, 3:] == 0)
    tone = 0.5 * np.sin(np.arange(2205) / 5.0)
    clip = {"key": "a0", "audio": writers.wav_bytes(tone, 22050), "format": "wav",
            "sample_rate": 22050, "speaker": 3}
    examples = _write_split(tmp_path / "audio", "audio", [clip])
    take_examples.main(["--examples", str(examples), "--labels", "3", "--sample-rate", "8000",
                        "--out", str(tmp_path / "real.wav")])
    audio, rate = writers.read_wav((tmp_path / "real.wav").read_bytes())
    assert rate == 8000 and len(audio) == 800


@pytest.mark.parametrize("labels, suffix, message", [
    ("0,0,0", ".npy", "too few examples of the labels {0: '2 of 3'}"),
    ("0", ".wav", "these are image examples, written as .npy"),
])
def test_refusals_name_the_problem(tmp_path, capsys, labels, suffix, message):
    examples = _images(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        take_examples.main(["--examples", str(examples), "--labels", labels,
                            "--out", str(tmp_path / f"x{suffix}")])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*"))
