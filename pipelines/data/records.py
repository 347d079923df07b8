"""TFRecord layout of ingested examples: one `tf.train.Example` per record, per modality.

    audio:     key bytes, audio bytes (encoded file), format bytes, sample_rate int64
               (0 = read the header), speaker int64
    tokens:    key bytes, text bytes
    images:    key bytes, image bytes (PNG), label int64
    sequences: key bytes, values float[], dim int64, label int64
    pairs:     key bytes, source bytes (UTF-8), target bytes (UTF-8)

Shards live at `<examples>/<split>/data-XXXXX-of-NNNNN.tfrecord`.
"""

import glob
import hashlib
import os

SPLITS = ("train", "eval", "test")
FIELDS = {
    "audio": {"key": "bytes", "audio": "bytes", "format": "bytes", "sample_rate": "int",
              "speaker": "int"},
    "tokens": {"key": "bytes", "text": "bytes"},
    "images": {"key": "bytes", "image": "bytes", "label": "int"},
    "sequences": {"key": "bytes", "values": "floats", "dim": "int", "label": "int"},
    "pairs": {"key": "bytes", "source": "bytes", "target": "bytes"},
}


def split_of(key, eval_percent, test_percent):
    """Stable split by a hash of the record key (same key -> same split, on any machine)."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    if bucket < test_percent:
        return "test"
    if bucket < test_percent + eval_percent:
        return "eval"
    return "train"


def serialize(record, modality):
    """record dict -> serialized tf.train.Example bytes (ValueError names a bad field)."""
    from tensorflow.core.example import example_pb2, feature_pb2

    features = {}
    for name, kind in FIELDS[modality].items():
        if name not in record:
            raise ValueError(f"Record {record.get('key')!r} lacks field {name!r} required for "
                             f"modality {modality!r} (fields: {sorted(FIELDS[modality])}).")
        value = record[name]
        if kind == "bytes":
            value = value.encode() if isinstance(value, str) else bytes(value)
            features[name] = feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=[value]))
        elif kind == "int":
            features[name] = feature_pb2.Feature(int64_list=feature_pb2.Int64List(
                value=[int(value)]))
        else:
            features[name] = feature_pb2.Feature(float_list=feature_pb2.FloatList(
                value=[float(v) for v in value]))
    example = example_pb2.Example(features=feature_pb2.Features(feature=features))
    return example.SerializeToString()


def deserialize(data):
    """serialized tf.train.Example -> dict of python values (lists for floats)."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(data)
    out = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value)
        out[name] = values if kind == "float_list" else (values[0] if values else None)
    return out


def feature_spec(modality):
    """`tf.io.parse_single_example` spec for `modality`."""
    import tensorflow as tf

    spec = {}
    for name, kind in FIELDS[modality].items():
        if kind == "bytes":
            spec[name] = tf.io.FixedLenFeature([], tf.string)
        elif kind == "int":
            spec[name] = tf.io.FixedLenFeature([], tf.int64)
        else:
            spec[name] = tf.io.VarLenFeature(tf.float32)
    return spec


def shard_files(examples_dir, split):
    """Sorted shard paths of `split`; ValueError if there are none."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose from {list(SPLITS)}.")
    files = sorted(glob.glob(os.path.join(examples_dir, split, "*.tfrecord*")))
    if not files:
        raise ValueError(
            f"Split {split!r} has no TFRecord shards under {os.path.join(examples_dir, split)}. "
            "Run ExampleGen (and DataValidator) first, or check `data.examples_dir`.")
    return files
