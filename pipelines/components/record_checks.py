"""Per-record checks for DataValidator: parse, decode, measure; a reason string when bad.

`read_shard(path)` yields the raw records of one TFRecord file and raises `CorruptShard`
naming the file and the record index when the framing or a checksum is broken (such a file
cannot be partly trusted). `check(data, modality, validation)` returns (stats, reason):
stats is a dict of measurements (length, sample_rate, speaker/label, min/max), reason is None
for a good record or says what is wrong.
"""

import io
import wave

import numpy as np

from pipelines.data import records


class CorruptShard(ValueError):
    """A TFRecord file whose framing or CRC is broken."""


def read_shard(path):
    import tensorflow as tf

    index = 0
    try:
        for data in tf.data.TFRecordDataset([path]):
            yield index, data.numpy()
            index += 1
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as err:
        raise CorruptShard(
            f"Corrupt TFRecord file {path}: record {index} cannot be read "
            f"({err.message.splitlines()[0]}). Re-run ExampleGen to rewrite the shards; "
            "nothing downstream was changed.") from None


def check(data, modality, validation):
    try:
        record = records.deserialize(data)
    except Exception as err:
        return {}, f"not a tf.train.Example: {err}"
    missing = sorted(set(records.FIELDS[modality]) - set(record))
    if missing:
        return {"key": record.get("key", b"").decode(errors="replace")}, \
            f"missing fields {missing} for modality {modality!r}"
    stats = {"key": record["key"].decode(errors="replace")}
    try:
        reason = _CHECKS[modality](record, stats, validation)
    except Exception as err:
        reason = f"unreadable {modality} data: {type(err).__name__}: {err}"
    if reason is None and "length" in stats:
        if stats["length"] < validation.min_length:
            reason = f"too short: {stats['length']} < validation.min_length " \
                     f"{validation.min_length}"
        elif stats["length"] > validation.max_length:
            reason = f"too long: {stats['length']} > validation.max_length " \
                     f"{validation.max_length}"
    return stats, reason


def _audio(record, stats, validation):
    fmt = record["format"].decode()
    data = record["audio"]
    stats.update(speaker=int(record["speaker"]), sample_rate=int(record["sample_rate"]),
                 format=fmt)
    if fmt == "wav":
        with wave.open(io.BytesIO(data)) as w:
            header_rate, frames = w.getframerate(), w.getnframes()
            raw = w.readframes(frames)
            if w.getsampwidth() != 2:
                return f"unsupported WAV sample width {w.getsampwidth() * 8} bits (need 16)"
            if len(raw) < frames * w.getnchannels() * 2:
                return f"truncated WAV: header says {frames} frames, data holds fewer"
        audio = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif fmt in ("ogg", "flac"):
        import tensorflow_io as tfio

        from pipelines.data.sources.klettres_speech import header_rate as read_rate

        header_rate = read_rate(data, fmt)
        decoded = (tfio.audio.decode_vorbis(data) if fmt == "ogg"
                   else tfio.audio.decode_flac(data, dtype="int16"))
        audio = np.asarray(decoded, np.float32).ravel()
        frames = int(decoded.shape[0])
    else:
        return f"unknown audio format {fmt!r} (expected wav, ogg or flac)"
    stats.update(length=int(frames), min=float(audio.min(initial=0.0)),
                 max=float(audio.max(initial=0.0)))
    if header_rate != stats["sample_rate"]:
        return (f"wrong sample rate: the {fmt} header says {header_rate} Hz, the record says "
                f"{stats['sample_rate']} Hz")
    if validation.allowed_sample_rates and header_rate not in validation.allowed_sample_rates:
        return (f"wrong sample rate: {header_rate} Hz is not in "
                f"validation.allowed_sample_rates {validation.allowed_sample_rates}")
    if frames == 0:
        return "empty audio (0 frames)"
    return None


def _tokens(record, stats, validation):
    stats["length"] = len(record["text"]) + 1  # + stop id
    return None


def _images(record, stats, validation):
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(record["image"])))
    stats.update(label=int(record["label"]), shape=list(image.shape), length=int(image.size),
                 min=float(image.min()), max=float(image.max()))
    return None


def _sequences(record, stats, validation):
    values, dim = np.asarray(record["values"], np.float32), int(record["dim"])
    if dim <= 0 or values.size % dim:
        return f"{values.size} values do not split into frames of dim {dim}"
    if not np.all(np.isfinite(values)):
        return "non-finite values"
    stats.update(label=int(record["label"]), length=values.size // dim,
                 min=float(values.min(initial=0.0)), max=float(values.max(initial=0.0)))
    return None


def _pairs(record, stats, validation):
    source = record["source"].decode("utf-8")
    target = record["target"].decode("utf-8")
    stats["length"] = len(target) + 1  # + stop id
    stats["source_length"] = len(source)
    if not source:
        return "empty source"
    if not target:
        return "empty target"
    return None


_CHECKS = {"audio": _audio, "tokens": _tokens, "images": _images, "sequences": _sequences,
           "pairs": _pairs}
