"""Running ExampleGen's and DataValidator's Beam pipelines on the configured runner, and the
TFRecord shard writer they share.

`run(build, beam)` builds a pipeline with `build(pipeline) -> [PCollection]` (its terminal
branches), joins those branches into one final step and runs it to completion. The join is
needed by Beam's DaskRunner (2.77), which computes only the last transform applied and its
ancestors: a branch that does not lead there would silently not run.

`write_shards` writes `((split, shard), (order, record bytes))` pairs to
`<out>/<split>/data-SSSSS-of-NNNNN.tfrecord`: one GroupByKey on the integer shard id, then
each shard file written in `order`, to a temporary name renamed into place. Unlike Beam's
`WriteToTFRecord` (random shard keys; side inputs, which the DaskRunner recomputes, leaving
`beam-temp-*` folders behind), the bytes depend only on the records: every runner writes the
same files, so the runner can stay out of the cache key. `fill_empty_shards` then writes the
shards that got no record, as empty files.
"""

import os
import pathlib


def run(build, beam):
    """Run `build`'s pipeline with the `beam` settings (`pipelines.beam_options.settings`);
    return the runner's name. Raises what the pipeline raised."""
    import apache_beam as beam_lib

    from pipelines import beam_options

    effective = beam_options.settings(beam)
    pipeline = beam_lib.Pipeline(options=beam_options.pipeline_options(effective))
    ends = build(pipeline)
    _ = (tuple(ends) | "JoinBranches" >> beam_lib.Flatten()
         | "Done" >> beam_lib.Map(lambda _: None))
    result = pipeline.run()
    try:
        state = result.wait_until_finish()
    finally:
        client = getattr(result, "client", None)  # the DaskRunner's distributed.Client
        if client is not None:
            client.close()
    if state not in (None, "DONE"):
        raise RuntimeError(f"The Beam pipeline ended in state {state} on runner "
                           f"{effective['runner']} (options {effective['options']}).")
    return effective["runner"]


def shard_path(out, split, shard, num_shards):
    return pathlib.Path(out) / split / f"data-{shard:05d}-of-{num_shards:05d}.tfrecord"


def write_shard(path, records):
    """Write `records` (bytes) as a TFRecord file at `path`, atomically; return the count."""
    import tensorflow as tf

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial")  # not *.tfrecord*
    count = 0
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for data in records:
            writer.write(data)
            count += 1
    os.replace(tmp, path)
    return count


def fill_empty_shards(out, num_shards):
    """Write an empty file for every shard of `num_shards` ({split: N}) that has none."""
    for split, n in num_shards.items():
        for shard in range(n):
            path = shard_path(out, split, shard, n)
            if not path.exists():
                write_shard(path, [])


def write_shards(rows, out, splits, num_shards, label="Write"):
    """`rows` of `((split index, shard), (order, bytes))` -> shard files (see the module
    docstring); returns a PCollection of `(split, shard, count)`. `splits` names the split
    indices; `num_shards` is {split: N}."""
    import apache_beam as beam

    out, splits, num_shards = str(out), tuple(splits), dict(num_shards)

    def write(group):
        (split_index, shard), items = group
        split = splits[split_index]
        ordered = [data for _, data in sorted(items, key=lambda item: item[0])]
        path = shard_path(out, split, shard, num_shards[split])
        return split, shard, write_shard(path, ordered)

    return (rows | f"{label}GroupByShard" >> beam.GroupByKey()
            | f"{label}Files" >> beam.Map(write))
