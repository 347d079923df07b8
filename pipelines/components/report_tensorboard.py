"""The Reporter's TensorBoard events: what the Trainer's logs cannot hold.

Written to `<report>/tensorboard` (TensorBoard finds it beside the Trainer's `<model>/logs`
with `tensorboard --logdir <pipeline root>`), at step = training steps:
- `eval/test_bits_per_position`, `eval/unigram_bits_per_position`: the Evaluator's figures;
- `samples/<target>/<file>`: each generated WAV as audio (`tf.summary.audio`), each target's
  image grid (`tf.summary.image`) and generated texts (`tf.summary.text`);
- `samples/test_speech/<speaker>`: real test speech to listen to beside them.
"""

import numpy as np

from pipelines.components import audio_metrics


def write(folder, step, evaluation, report, samples, rate=None, real=None):
    """Write the events; returns the number of summaries written."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(folder))
    count = 0
    with writer.as_default(step=int(step or 0)):
        for key in ("bits_per_position", "unigram_bits_per_position"):
            if evaluation.get(key) is not None:
                name = "test_bits_per_position" if key == "bits_per_position" else key
                tf.summary.scalar(f"eval/{name}", float(evaluation[key]))
                count += 1
        for target, entry in report.get("targets", {}).items():
            for name in entry.get("files", []):
                count += _sample(tf, target, samples / name, rate)
        for speaker, audio in (real or {}).items():
            tf.summary.audio(f"samples/test_speech/{speaker}", _clip(audio), rate)
            count += 1
    writer.close()
    return count


def _clip(audio):
    return np.asarray(audio, np.float32).reshape(1, -1, 1)  # (k=1, T, channels=1)


def _sample(tf, target, path, rate):
    tag = f"samples/{target}/{path.stem}"
    if path.suffix == ".wav":
        tf.summary.audio(tag, _clip(audio_metrics.decode_wav(path.read_bytes(), rate)), rate)
    elif path.suffix == ".png" and path.stem.endswith("_grid"):  # rows are in the grid
        image = tf.io.decode_png(path.read_bytes())
        tf.summary.image(tag, image[None])
    elif path.suffix in (".txt", ".csv"):
        tf.summary.text(tag, path.read_text(errors="replace")[:2000])
    else:
        return 0
    return 1
