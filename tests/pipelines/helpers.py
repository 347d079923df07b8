"""Tiny data and configs for the pipeline tests (no Beam, no downloads)."""

import json
import os
import pathlib

import numpy as np
import tensorflow as tf

from pipelines import config as config_lib
from pipelines.data import records
from serving import writers

TINY_WAVENET = {"num_classes": 256, "dilations": [1, 2, 4], "residual_channels": 8,
                "skip_channels": 8, "num_global_classes": 2, "global_embedding_dim": 4}


def wav_bytes(samples, rate):
    return writers.wav_bytes(samples, rate)


def audio_record(i, rate=16000, length=None, speaker=None):
    speaker = i % 2 if speaker is None else speaker
    length = length or 1200 + 100 * (i % 7)
    t = np.arange(length) / rate
    samples = 0.5 * np.sin(2 * np.pi * (220 + 110 * speaker) * t)
    return {"key": f"tone/{i:04d}", "audio": wav_bytes(samples, rate), "format": "wav",
            "sample_rate": rate, "speaker": speaker}


def write_split(examples_dir, split, rows, modality, shards=2):
    folder = pathlib.Path(examples_dir) / split
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        path = folder / f"data-{s:05d}-of-{shards:05d}.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for row in rows[s::shards]:
                writer.write(records.serialize(row, modality))


def write_examples(examples_dir, modality="audio", count=(12, 4, 4), make=None, shards=2):
    make = make or {"audio": audio_record, "tokens": token_record, "images": image_record,
                    "sequences": sequence_record}[modality]
    start = 0
    for split, n in zip(records.SPLITS, count):
        write_split(examples_dir, split, [make(start + i) for i in range(n)], modality, shards)
        start += n
    meta = {"metadata": {"num_speakers": 2}} if modality == "audio" else {"metadata": {}}
    (pathlib.Path(examples_dir) / "ingest.json").write_text(json.dumps(meta))
    return str(examples_dir)


def token_record(i):
    return {"key": f"text/{i:04d}", "text": ("hello " * (1 + i % 5)).encode()}


def image_record(i):
    from pipelines.data.sources.image_sources import _png

    image = (np.arange(64).reshape(8, 8) * (i + 1)) % 17
    return {"key": f"img/{i:04d}", "image": _png(image), "label": i % 10}


def sequence_record(i):
    length = 5 + i % 4
    values = np.arange(length * 3, dtype=np.float32) / 10.0
    return {"key": f"seq/{i:04d}", "values": values.tolist(), "dim": 3, "label": i % 9}


def data_config(examples_dir, **kw):
    base = dict(source="espeak", modality="audio", sample_rate=8000, window=256, batch_size=4,
                shuffle_buffer=16, seed=0, examples_dir=str(examples_dir))
    base.update(kw)
    return config_lib.DataConfig(**base)


def pipeline_config(tmp, **sections):
    """A tiny speech pipeline: 2 espeak voices x 10 sentences, a tiny WaveNet, SavedModel
    export only, pushed under tmp/serving."""
    raw = {
        "name": "tiny",
        "data": {"source": "espeak", "modality": "audio",
                 "options": {"voices": ["en-us+m3", "en-us+f3"],
                             "sentences": [f"Number {n} is here." for n in range(10)]},
                 "num_shards": 1, "eval_percent": 25, "test_percent": 25,
                 "window": 256, "batch_size": 4},
        "validation": {"min_length": 256},
        "model": {"family": "wavenet", "params": dict(TINY_WAVENET)},
        "training": {"steps": 4, "steps_per_epoch": 2},
        # 4 training steps test the plumbing, not learning: no unigram gate
        "evaluation": {"max_batches": 2, "max_bits_per_sample": 8.5, "max_regression": 0.0,
                       "beat_unigram": False},
        "export": {"targets": ["savedmodel"], "verify_parity": False},
        "push": {"serving_base_path": os.path.join(str(tmp), "serving")},
        "generation": {"num_samples": 1, "num_steps": 50},
    }
    for key, value in sections.items():
        section, field = key.split("__")
        raw[section][field] = value
    return config_lib.from_dict(raw, "tiny")
