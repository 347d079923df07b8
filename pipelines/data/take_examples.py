"""Examples out of an Examples artifact split, as files a command can take: real data beside
generated samples (prompt images for inpainting, real speech and sequences for plots).

    python -m pipelines.data.take_examples --examples DIR --split test --labels 0,1,2 \
        --out test_images.npy

`--labels L1,L2,..` takes, in that order, the first example of each label (class id for
images and sequences, speaker id for audio; a label listed k times gives its first k
examples); without it, the split's first `--count` examples. The output follows the modality:

    images     .npy   stored pixel ids [N, H, W, C] (uint8), the values the model trains on
    sequences  .npz   x float32 [N, T, D] zero-padded, lengths int32 [N], global_condition [N]
    audio      .wav   16-bit PCM at --sample-rate (resampled as the pipeline reads it; default
                      the file's own rate); several examples: `<stem>_<i>.wav`
    tokens     .txt   the texts, one per line
"""

import argparse
import collections
import io
import os
import pathlib

import numpy as np

SUFFIX = {"image": ".npy", "values": ".npz", "audio": ".wav", "text": ".txt"}


def take(examples_dir, split, labels=None, count=1):
    """The chosen records (dicts, `records.deserialize`), in the order asked for."""
    import tensorflow as tf

    from pipelines.data import records

    wanted = collections.Counter(labels or [])
    chosen = {label: [] for label in wanted}
    first = []
    for file in records.shard_files(examples_dir, split):
        for data in tf.data.TFRecordDataset(file):
            record = records.deserialize(data.numpy())
            label = int(record.get("label", record.get("speaker", 0)) or 0)
            if labels is None:
                first.append(record)
                if len(first) == count:
                    return first
            elif len(chosen.get(label, ())) < wanted.get(label, 0):
                chosen[label].append(record)
    if labels is None:
        return first
    short = {k: f"{len(chosen[k])} of {n}" for k, n in wanted.items() if len(chosen[k]) < n}
    if short:
        raise ValueError(f"The {split} split of {examples_dir} has too few examples of the "
                         f"labels {short}; ask for fewer or other labels.")
    seen = collections.Counter()
    out = []
    for label in labels:
        out.append(chosen[label][seen[label]])
        seen[label] += 1
    return out


def write(chosen, out, sample_rate=None):
    """Write the records to `out` (its suffix must match their modality); returns the paths."""
    from serving import writers

    kind = next((k for k in SUFFIX if k in chosen[0]), None)
    out = pathlib.Path(out)
    if out.suffix != SUFFIX.get(kind):
        raise ValueError(f"--out {out}: these are {kind or 'unknown'} examples, written as "
                         f"{SUFFIX.get(kind, '?')}; name a file with that extension.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == "image":
        from PIL import Image

        images = [np.asarray(Image.open(io.BytesIO(r["image"])), np.uint8) for r in chosen]
        images = np.stack([i[..., None] if i.ndim == 2 else i for i in images])
        buffer = io.BytesIO()
        np.save(buffer, images)
        writers.write_bytes(out, buffer.getvalue())
        return [out]
    if kind == "values":
        return [_write_sequences(chosen, out)]
    if kind == "text":
        texts = [bytes(r["text"]).decode("utf-8", "replace").replace("\n", " ") for r in chosen]
        writers.write_bytes(out, ("\n".join(texts) + "\n").encode())
        return [out]
    paths = [out] if len(chosen) == 1 else [out.with_name(f"{out.stem}_{i}{out.suffix}")
                                            for i in range(len(chosen))]
    for record, path in zip(chosen, paths):
        audio, rate = writers.read_wav(record["audio"], where=record.get("key", "a record"))
        if sample_rate and sample_rate != rate:
            from pipelines.components.audio_metrics import decode_wav

            audio, rate = decode_wav(record["audio"], sample_rate), sample_rate
        writers.write_wav(path, audio, rate)
    return paths


def _write_sequences(chosen, out):
    from serving import writers

    frames = [np.asarray(r["values"], np.float32).reshape(-1, int(r["dim"])) for r in chosen]
    x = np.zeros((len(frames), max(len(f) for f in frames), frames[0].shape[1]), np.float32)
    for i, f in enumerate(frames):
        x[i, : len(f)] = f
    buffer = io.BytesIO()
    np.savez(buffer, x=x, lengths=np.asarray([len(f) for f in frames], np.int32),
             global_condition=np.asarray([int(r.get("label", 0)) for r in chosen], np.int32))
    writers.write_bytes(out, buffer.getvalue())
    return out


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", required=True, help="an Examples artifact directory "
                        "(e.g. runs/NAME/ExampleGen/examples/1)")
    parser.add_argument("--split", default="test", help="train, eval or test")
    parser.add_argument("--labels", default=None, help="comma-separated class/speaker ids: "
                        "the first example of each, in this order")
    parser.add_argument("--count", type=int, default=1,
                        help="without --labels: the split's first N examples")
    parser.add_argument("--sample-rate", "--sample_rate", dest="sample_rate", type=int,
                        default=None, help="audio: resample to this rate")
    parser.add_argument("--out", required=True, help=".npy | .npz | .wav | .txt (by modality)")
    args = parser.parse_args(argv)
    labels = [int(v) for v in args.labels.split(",")] if args.labels else None
    if args.count < 1:
        parser.error(f"--count {args.count}: at least one example is expected.")
    try:
        chosen = take(args.examples, args.split, labels, args.count)
        if not chosen:
            raise ValueError(f"The {args.split} split of {args.examples} holds no examples.")
        paths = write(chosen, args.out, args.sample_rate)
    except ValueError as error:
        parser.exit(2, f"take_examples: error: {error}\n")
    print(f"wrote {', '.join(map(str, paths))} ({len(chosen)} examples)")
    return 0


if __name__ == "__main__":
    main()
