"""The Reporter's TensorBoard events hold the eval figures and every sample, readable back."""

import numpy as np
import tensorflow as tf

from pipelines.components import report_tensorboard
from serving import writers


def _events(folder):
    found = {}
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found[value.tag] = (event.step, value)
    return found


def test_eval_scalars_audio_images_and_text(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    tone = 0.5 * np.sin(np.arange(800) / 8.0)
    writers.write_wav(samples / "savedmodel_0_en-us+m3.wav", tone, 8000)
    writers.write_png(samples / "onnx_grid.png", np.zeros((4, 6), np.uint8))
    (samples / "tflite_0.txt").write_text("hello world")
    report = {"targets": {"savedmodel": {"files": ["savedmodel_0_en-us+m3.wav"]},
                          "onnx": {"files": ["onnx_0_class0.png", "onnx_grid.png"]},
                          "tflite": {"files": ["tflite_0.txt"]}}}
    evaluation = {"bits_per_position": 5.25, "unigram_bits_per_position": 7.5}
    count = report_tensorboard.write(tmp_path / "tb", 120, evaluation, report, samples,
                                     8000, {0: tone})
    events = _events(tmp_path / "tb")
    assert count == 6 and len(events) == 6, sorted(events)
    step, value = events["eval/test_bits_per_position"]
    assert step == 120 and abs(tf.make_ndarray(value.tensor) - 5.25) < 1e-6
    for tag in ("samples/savedmodel/savedmodel_0_en-us+m3", "samples/test_speech/0"):
        encoded = tf.make_ndarray(events[tag][1].tensor)[0, 0]  # (k, [wav, label])
        audio, rate = tf.audio.decode_wav(encoded)
        assert int(rate) == 8000 and audio.shape == (800, 1)
        np.testing.assert_allclose(audio.numpy()[:, 0], tone, atol=1e-3)
    image = tf.make_ndarray(events["samples/onnx/onnx_grid"][1].tensor)  # [w, h, png...]
    assert image[:2].tolist() == [b"6", b"4"]
    text = tf.make_ndarray(events["samples/tflite/tflite_0"][1].tensor)
    assert text.item() == b"hello world"
