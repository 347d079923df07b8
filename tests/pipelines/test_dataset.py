"""make_dataset: shapes, dtypes, masks per modality; sharding; in-graph audio decoding."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ar import contract
from keras_ar.ops import mu_law_encode
from pipelines.data import make_dataset
from tests.pipelines import helpers


def test_audio_train_windows_masks_and_speakers(tmp_path):
    helpers.write_examples(tmp_path, "audio")
    config = helpers.data_config(tmp_path, window=700)
    batch = next(iter(make_dataset(config, "train")))
    assert batch[contract.X].shape == (4, 700) and batch[contract.X].dtype == tf.int32
    assert batch[contract.GLOBAL_CONDITION].dtype == tf.int32
    assert set(batch[contract.GLOBAL_CONDITION].numpy()) <= {0, 1}
    x = batch[contract.X].numpy()
    assert x.min() >= 0 and x.max() < 256
    # 16 kHz clips of 1200..1800 samples resampled to 8 kHz: 600..900 samples.
    lengths = batch[contract.LENGTHS].numpy()
    assert np.all((lengths >= 590) & (lengths <= 700))
    silence = int(mu_law_encode(0.0))
    for row, n in zip(x, lengths):
        assert np.all(row[n:] == silence)


def test_audio_eval_is_deterministic_and_finite(tmp_path):
    helpers.write_examples(tmp_path, "audio")
    config = helpers.data_config(tmp_path, window=256)
    first = [b[contract.X].numpy() for b in make_dataset(config, "eval")]
    second = [b[contract.X].numpy() for b in make_dataset(config, "eval")]
    assert sum(len(b) for b in first) == 4
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_train_shuffling_is_seeded(tmp_path):
    helpers.write_examples(tmp_path, "audio")
    a = next(iter(make_dataset(helpers.data_config(tmp_path, seed=3), "train")))
    b = next(iter(make_dataset(helpers.data_config(tmp_path, seed=3), "train")))
    np.testing.assert_array_equal(a[contract.X], b[contract.X])



def test_train_stream_is_the_same_from_every_iterator(tmp_path):
    """Keras' fit under a strategy iterates once to build, then trains on a new iterator:
    both must yield the same batches, as the single-device run's one iterator does."""
    helpers.write_examples(tmp_path, "audio")
    dataset = make_dataset(helpers.data_config(tmp_path, batch_size=3), "train")
    first = [b[contract.X].numpy() for b in dataset.take(6)]
    next(iter(dataset))  # an extra iterator in between changes nothing
    second = [b[contract.X].numpy() for b in dataset.take(6)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(first[0], b) for b in first[1:])  # still shuffled

def test_resampling_in_graph_halves_the_length(tmp_path):
    from pipelines.data.dataset import decode_audio

    data = helpers.wav_bytes(np.zeros(1600), 16000)
    audio = decode_audio(tf.constant(data), tf.constant("wav"), tf.constant(16000, tf.int64),
                         8000)
    assert abs(int(audio.shape[0]) - 800) <= 2


def test_tokens_bytes_stop_and_padding(tmp_path):
    helpers.write_examples(tmp_path, "tokens")
    config = helpers.data_config(tmp_path, modality="tokens", window=40)
    batch = next(iter(make_dataset(config, "eval")))
    x, lengths = batch[contract.X].numpy(), batch[contract.LENGTHS].numpy()
    assert x.shape == (4, 40) and x.dtype == np.int32
    for row, n in zip(x, lengths):
        assert row[n - 1] == 256 and np.all(row[n:] == 256) and np.all(row[:n - 1] < 256)
        assert bytes(row[:6].tolist()) == b"hello "


def test_images_shape_and_labels(tmp_path):
    helpers.write_examples(tmp_path, "images")
    config = helpers.data_config(tmp_path, modality="images", use_label=True)
    batch = next(iter(make_dataset(config, "test")))
    assert batch[contract.X].shape == (4, 8, 8, 1) and batch[contract.X].dtype == tf.int32
    assert batch[contract.X].numpy().max() <= 16
    assert batch[contract.GLOBAL_CONDITION].shape == (4,)


def test_sequences_padded_with_lengths(tmp_path):
    helpers.write_examples(tmp_path, "sequences")
    config = helpers.data_config(tmp_path, modality="sequences")
    batch = next(iter(make_dataset(config, "eval")))
    x, lengths = batch[contract.X].numpy(), batch[contract.LENGTHS].numpy()
    assert x.dtype == np.float32 and x.shape[0] == 4 and x.shape[2] == 3
    assert x.shape[1] == lengths.max()
    for row, n in zip(x, lengths):
        assert np.all(row[n:] == 0.0) and np.all(row[:n].any(axis=-1) | (np.arange(n) == 0))


@pytest.mark.parametrize("shards", [4, 1])
def test_sharding_two_workers_disjoint_and_complete(tmp_path, shards):
    rows = [helpers.token_record(i) for i in range(10)]
    helpers.write_split(tmp_path, "eval", rows, "tokens", shards=shards)
    config = helpers.data_config(tmp_path, modality="tokens", window=8, batch_size=2)
    seen = []
    for worker in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                         num_replicas_in_sync=2)
        ids = [tuple(r) for b in make_dataset(config, "eval", ctx) for r in
               b[contract.X].numpy()]
        seen.append(ids)
    everything = [tuple(r) for b in make_dataset(
        helpers.data_config(tmp_path, modality="tokens", window=8, batch_size=2), "eval")
        for r in b[contract.X].numpy()]
    assert seen[0] and seen[1]
    assert sorted(seen[0] + seen[1]) == sorted(everything)  # complete, no duplicates
    assert len(everything) == 10


def test_empty_split_error_names_the_folder(tmp_path):
    helpers.write_split(tmp_path, "train", [helpers.token_record(0)], "tokens", shards=1)
    config = helpers.data_config(tmp_path, modality="tokens")
    with pytest.raises(ValueError, match=r"Split 'test' has no TFRecord shards under .*test"):
        make_dataset(config, "test")


def test_linear_16_bit_audio_levels_and_silence(tmp_path):
    """`audio_encoding: linear` keeps the WAV's 16-bit PCM levels (no mu-law companding)."""
    helpers.write_examples(tmp_path, "audio")
    config = helpers.data_config(tmp_path, window=2000, sample_rate=16000,
                                 quantization_channels=65536, audio_encoding="linear")
    batch = next(iter(make_dataset(config, "eval")))
    x, lengths = batch[contract.X].numpy(), batch[contract.LENGTHS].numpy()
    assert x.min() >= 0 and x.max() < 65536
    row, n = x[0], int(lengths[0])
    rate = 16000
    t = np.arange(n) / rate
    expected_pcm = np.round(0.5 * np.sin(2 * np.pi * 220 * t) * 32767)  # helpers' speaker 0
    got_pcm = (2.0 * row[:n] / 65535 - 1.0) * 32768
    assert np.max(np.abs(got_pcm - expected_pcm)) <= 1.5  # one 16-bit step of rounding
    assert len(np.unique(row[:n])) > 256  # more levels than any 8-bit encoding holds
    assert np.all(row[n:] == 32768)  # linear silence: the middle level
