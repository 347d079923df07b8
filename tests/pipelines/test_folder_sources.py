"""The `image_folder` and `audio_folder` sources: users' own PNG/JPEG images and WAV/FLAC/OGG
recordings through ExampleGen (Beam) and `make_dataset`, and their errors naming the file."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from keras_ar import contract
from pipelines import config as config_lib
from pipelines.components import example_gen
from pipelines.components.base import Artifact, ExecutionContext
from pipelines.data import make_dataset, records, sources
from tests.pipelines import helpers


def _ingest(tmp_path, source, modality, options, **extra):
    data = {"source": source, "modality": modality, "options": options, "num_shards": 1,
            "eval_percent": 25, "test_percent": 25, "batch_size": 64, **extra}
    examples = Artifact("Examples", str(tmp_path / "examples"))
    context = ExecutionContext(str(tmp_path), "key", "run", log=lambda *a: None)
    example_gen.execute({}, {"examples": examples}, {"data": data}, context)
    meta = json.loads((tmp_path / "examples" / "ingest.json").read_text())["metadata"]
    return config_lib.DataConfig(**{**data, "examples_dir": examples.uri}), meta


def _all_batches(config):
    """(x, global_condition, lengths or None) over all splits, concatenated."""
    xs, conds, lengths = [], [], []
    for split in records.SPLITS:
        for batch in make_dataset(config, split, repeat=False):
            xs.append(batch[contract.X].numpy())
            conds.append(batch[contract.GLOBAL_CONDITION].numpy())
            if contract.LENGTHS in batch:
                lengths.append(batch[contract.LENGTHS].numpy())
    return np.concatenate(xs), np.concatenate(conds), (
        np.concatenate(lengths) if lengths else None)


def _spread(prefix, count, ext):
    """`count` file names whose keys `<prefix>/<name>` cycle through train/eval/test under the
    25/25 hash split, so every split gets records."""
    names, k = [], 0
    while len(names) < count:
        name = f"f{k}.{ext}"
        if records.split_of(f"{prefix}/{name}", 25, 25) == records.SPLITS[len(names) % 3]:
            names.append(name)
        k += 1
    return names


def _save(path, array, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, format=fmt)


def test_image_folder_labels_from_subdirectories_through_example_gen(tmp_path):
    """Class c, PNG i is a constant grey 4x5 image of value 40c + 5i + 3 (RGB for odd i: the
    grey conversion keeps equal channels); one JPEG (upper-case .JPG) per class of value 200 +
    20c; a text file is ignored."""
    root = tmp_path / "images"
    expected = {}
    for c, name in enumerate(["cat", "dog"]):
        for i, file in enumerate(_spread(f"image_folder/{name}", 6, "png")):
            v = 40 * c + 5 * i + 3
            shape = (4, 5, 3) if i % 2 else (4, 5)
            _save(root / name / file, np.full(shape, v))
            expected[v] = c
        _save(root / name / "nested" / "photo.JPG", np.full((4, 5, 3), 200 + 20 * c), "JPEG")
    (root / "cat" / "notes.txt").write_text("not an image")
    config, meta = _ingest(tmp_path, "image_folder", "images", {"path": str(root)},
                           use_label=True)
    assert meta == {"num_classes": 2, "classes": ["cat", "dog"], "levels": 256,
                    "image_shape": [4, 5, 1]}
    x, labels, _ = _all_batches(config)
    assert x.shape == (14, 4, 5, 1) and x.dtype == np.int32
    seen_jpeg = set()
    for image, label in zip(x, labels):
        if image.min() >= 190:  # JPEG: lossy, but a flat grey stays within a few levels
            assert abs(image.mean() - (200 + 20 * label)) <= 3
            seen_jpeg.add(int(label))
            continue
        assert np.all(image == image[0, 0, 0]) and expected.pop(int(image[0, 0, 0])) == label
    assert not expected and seen_jpeg == {0, 1}


def test_image_folder_rgb_levels_and_no_labels(tmp_path):
    root = tmp_path / "flat"
    pixels = np.arange(4 * 5 * 3).reshape(4, 5, 3) * 4  # 0..236
    _save(root / "a.png", pixels)
    _save(root / "deeper" / "b.PNG", 255 - pixels)
    source = sources.get("image_folder", path=str(root), label_from="none", channels=3,
                         levels=2, image_size=[4, 5])
    source.check()
    items = source.items()
    assert [label for label, _ in items] == [0, 0]
    first = source.load(items[0])
    assert first["key"] == "image_folder/a.png" and first["label"] == 0
    stored = np.asarray(Image.open(io.BytesIO(first["image"])))
    assert stored.shape == (4, 5, 3)
    np.testing.assert_array_equal(stored, pixels // 128)
    assert source.load(items[1])["key"] == "image_folder/deeper/b.PNG"
    assert source.metadata() == {"num_classes": 1, "classes": [], "levels": 2,
                                 "image_shape": [4, 5, 3]}


def test_image_folder_errors_name_the_file(tmp_path):
    root = tmp_path / "images"
    _save(root / "a" / "0.png", np.zeros((4, 5)))
    _save(root / "a" / "1.png", np.zeros((6, 5)))
    (root / "b").mkdir()
    (root / "b" / "broken.jpg").write_bytes(b"this is not a jpeg")
    source = sources.get("image_folder", path=str(root))
    items = source.items()
    assert [(label, p.rsplit("/", 1)[-1]) for label, p in items] == [
        (0, "0.png"), (0, "1.png"), (1, "broken.jpg")]
    source.load(items[0])
    with pytest.raises(ValueError, match=r"1.png is 6x5 \(height x width\) but the images must "
                                         r"all be 4x5"):
        source.load(items[1])
    with pytest.raises(ValueError, match=r"cannot read image .*b/broken.jpg"):
        source.load(items[2])
    sized = sources.get("image_folder", path=str(root), image_size=[6, 5])
    with pytest.raises(ValueError, match=r"0.png is 4x5 .* must all be 6x5"):
        sized.load(items[0])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no .png/.jpg/.jpeg files under .*empty"):
        sources.get("image_folder", path=str(tmp_path / "empty")).check()
    with pytest.raises(FileNotFoundError, match="missing.* is not a directory"):
        sources.get("image_folder", path=str(tmp_path / "missing")).check()
    for bad, match in [({"channels": 2}, "`channels` must be 1 .* received 2"),
                       ({"levels": 1}, r"`levels` must be an integer in \[2, 256\]"),
                       ({"label_from": "name"}, "`label_from` must be .* received 'name'")]:
        with pytest.raises(ValueError, match=match):
            sources.get("image_folder", path=str(root), **bad).check()


def _tone(seconds, rate, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return helpers.wav_bytes(0.5 * np.sin(2 * np.pi * freq * t), rate)


def test_audio_folder_speakers_from_subdirectories_through_example_gen(tmp_path):
    """alice: 0.1 s clips (16 kHz and 8 kHz, one nested); bob: 0.05 s clips; at the 8 kHz
    target the decoded lengths are 800 and 400 samples, which tells the speakers apart."""
    root = tmp_path / "audio"
    (root / "alice" / "day2").mkdir(parents=True)
    (root / "bob").mkdir()
    rates = {}
    for i, (a, b) in enumerate(zip(_spread("audio_folder/alice", 5, "wav"),
                                   _spread("audio_folder/bob", 5, "WAV"))):
        rate = 16000 if i % 2 else 8000
        where = root / "alice" / ("day2" if i == 4 else "") / a
        where.write_bytes(_tone(0.1, rate))
        rates[a] = rate
        (root / "bob" / b).write_bytes(_tone(0.05, rate, 660.0))
    (root / "bob" / "readme.md").write_text("ignored")
    source = sources.get("audio_folder", path=str(root))
    for speaker, path in source.items()[:5]:
        record = source.load((speaker, path))
        name = path.rsplit("/", 1)[-1]
        assert record["key"].endswith("/" + name) and record["sample_rate"] == rates[name]
        assert record["format"] == "wav" and record["speaker"] == 0
    assert source.items()[4][1].endswith(f"alice/day2/{name}")  # nested files after the rest
    config, meta = _ingest(tmp_path, "audio_folder", "audio", {"path": str(root)},
                           use_speaker=True, sample_rate=8000, window=1000)
    assert meta == {"num_speakers": 2, "speakers": ["alice", "bob"]}
    x, speakers, lengths = _all_batches(config)
    assert x.shape == (10, 1000) and sorted(speakers) == [0] * 5 + [1] * 5
    for speaker, n in zip(speakers, lengths):
        assert abs(n - (800 if speaker == 0 else 400)) <= 2


def test_audio_folder_without_speakers_and_errors_name_the_file(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    (root / "ok.wav").write_bytes(_tone(0.01, 22050))
    (root / "empty.flac").write_bytes(b"")
    (root / "junk.ogg").write_bytes(b"OggS but not really vorbis")
    (root / "noframes.wav").write_bytes(helpers.wav_bytes(np.zeros(0), 8000))
    source = sources.get("audio_folder", path=str(root), speaker_from="none")
    items = source.items()
    names = [p.rsplit("/", 1)[-1] for _, p in items]
    assert names == ["empty.flac", "junk.ogg", "noframes.wav", "ok.wav"]
    assert {speaker for speaker, _ in items} == {0}
    assert source.metadata() == {"num_speakers": 1, "speakers": []}
    assert source.load(items[3])["sample_rate"] == 22050
    with pytest.raises(ValueError, match=r"empty.flac is empty \(0 bytes\)"):
        source.load(items[0])
    with pytest.raises(ValueError, match=r"sample rate from the header of .*junk.ogg; expected "
                                         r"a valid OGG file"):
        source.load(items[1])
    with pytest.raises(ValueError, match=r"header of .*noframes.wav"):
        source.load(items[2])
    with pytest.raises(ValueError, match=r"no .wav/.flac/.ogg files under .*speaker "
                                         r"subdirectories"):
        sources.get("audio_folder", path=str(root)).check()
    with pytest.raises(ValueError, match="`speaker_from` must be .* received 'file'"):
        sources.get("audio_folder", path=str(root), speaker_from="file").check()
    with pytest.raises(ValueError, match="option `path`"):
        sources.get("audio_folder").check()
