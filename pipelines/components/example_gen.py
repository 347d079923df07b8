"""ExampleGen executor: a bundled source -> sharded TFRecords split train/eval/test, as an
Apache Beam pipeline on the configured runner (`beam:`; DirectRunner in_memory by default).

    Create(numbered items) -> Map(source.load) -> Map(serialize; split by a stable hash of
      the key, shard = item number % data.num_shards)
      -> write_shards(<examples>/<split>/data-SSSSS-of-NNNNN.tfrecord, in item order)

Every split gets `data.num_shards` files and each file's bytes depend only on the source's
items, so every runner writes the same files. Writes `<examples>/ingest.json` (counts per
split, seconds, records/s, the runner, source metadata). An empty split is an error naming
the split and how to fix it. Pairs (`data.modality: pairs`, items (source, target)) must fit
the model's target length rule (`params["pairs_limits"]`, `pipelines.data.pairs`) or the
ingest fails before anything is written. Every record offered is written, or the component
fails: the written count is checked against the source's (`RecordCountError`).
"""

import time

from pipelines import config as config_lib
from pipelines.components import beam_pipeline
from pipelines.components.base import write_json
from pipelines.data import pairs, records, sources


class RecordCountError(RuntimeError):
    """A stage wrote fewer (or more) records than it was given."""


def check_count(stage, expected, counts, where):
    """Raise RecordCountError unless the records written (`counts` per split) add up to
    `expected`: nothing is lost or duplicated between a stage's input and its output."""
    written = sum(counts.values())
    if written != expected:
        raise RecordCountError(
            f"{stage}: {expected} records in, {written} written ({counts}) under {where}. "
            f"A record was {'lost' if written < expected else 'duplicated'} by the Beam "
            f"runner; nothing was kept. Rerun the component (with the default runner: "
            f"beam.runner DirectRunner, direct_running_mode in_memory).")


def select(items, max_examples):
    """Evenly spaced items (every speaker/class keeps its share), order kept."""
    if not max_examples or max_examples >= len(items):
        return list(items)
    return [items[i * len(items) // max_examples] for i in range(max_examples)]


def execute(inputs, outputs, params, context):
    data = config_lib.DataConfig(**params["data"])
    source = sources.get(data.source, **data.options)
    if source.modality != data.modality:
        raise ValueError(f"Source {data.source!r} gives {source.modality!r} records but "
                         f"data.modality is {data.modality!r}; set data.modality: "
                         f"{source.modality}.")
    source.check()
    items = select(source.items(), data.max_examples)
    if not items:
        raise ValueError(f"Source {data.source!r} offered no records (options {data.options}).")
    if data.modality == "pairs":  # every pair fits the model, or nothing is written
        limits = params["pairs_limits"]
        pairs.check_lengths(items, limits["rule"], limits["window"])
    out = outputs["examples"].path
    start = time.perf_counter()
    runner = beam_pipeline.run(_build(source, items, data, out), getattr(context, "beam", {}))
    beam_pipeline.fill_empty_shards(out, {s: data.num_shards for s in records.SPLITS})
    seconds = time.perf_counter() - start
    counts = _count(out)
    check_count("ExampleGen", len(items), counts, out)
    for split, n in counts.items():
        if n == 0:
            raise ValueError(
                f"ExampleGen: split {split!r} is empty ({sum(counts.values())} records from "
                f"source {data.source!r}: {counts}). Raise data.max_examples or "
                f"data.{split}_percent (eval/test share by key hash).")
    stats = {"counts": counts, "records": sum(counts.values()), "seconds": round(seconds, 2),
             "records_per_s": round(sum(counts.values()) / max(seconds, 1e-9), 1),
             "runner": runner, "source": data.source, "metadata": source.metadata()}
    write_json(out / "ingest.json", stats)
    outputs["examples"].properties.update(
        records=stats["records"], records_per_s=stats["records_per_s"])
    context.log(f"ExampleGen: {stats['records']} records {counts} in {stats['seconds']} s "
                f"({stats['records_per_s']} records/s on {runner}) -> {out}")


def _build(source, items, data, out):
    """The pipeline: `build(pipeline) -> [terminal PCollection]` for `beam_pipeline.run`."""
    modality, ev, te, shards = data.modality, data.eval_percent, data.test_percent, \
        data.num_shards

    def keyed(numbered):
        number, record = numbered
        split = records.SPLITS.index(records.split_of(record["key"], ev, te))
        return (split, number % shards), (number, records.serialize(record, modality))

    def build(p):
        import apache_beam as beam

        rows = (p | "Items" >> beam.Create(list(enumerate(items)))
                | "Load" >> beam.Map(lambda numbered: (numbered[0], source.load(numbered[1])))
                | "Serialize" >> beam.Map(keyed))
        return [beam_pipeline.write_shards(rows, out, records.SPLITS,
                                           {s: shards for s in records.SPLITS})]

    return build


def _count(examples_dir):
    import tensorflow as tf

    counts = {}
    for split in records.SPLITS:
        files = sorted((examples_dir / split).glob("*.tfrecord*"))
        counts[split] = sum(1 for _ in tf.data.TFRecordDataset([str(f) for f in files])) \
            if files else 0
    return counts
