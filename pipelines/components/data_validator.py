"""DataValidator executor: statistics, schema and quarantine, as an Apache Beam pipeline on
the configured runner (`beam:`).

    Create(shards) -> FlatMap(read_shard) -> Map(check)
      -> good: write_shards (shard j of a split keeps the good records of input shard j, in
         order: the validated Examples, the same bytes on every runner)
      -> summaries: GroupByKey(one key) -> summary.json (sorted by file and record)
      -> statistics.json, schema.json, quarantine.jsonl

Every record is either in the validated Examples or in `quarantine.jsonl` with its file,
index, key and reason: nothing is silently dropped. The run fails (after writing the
quarantine) if more than `validation.max_bad_fraction` of the records are bad, if a split ends
up empty, or if a shard is corrupt (the error names the file and the record).
"""

import json
import pathlib

from pipelines import config as config_lib
from pipelines.components import beam_pipeline, record_checks
from pipelines.components.base import write_json
from pipelines.components.example_gen import check_count
from pipelines.data import records


class DataValidationError(ValueError):
    """Too many bad records, or an empty split; the message names the quarantine file."""


def execute(inputs, outputs, params, context):
    validation = config_lib.ValidationConfig(**params["validation"])
    modality = params["modality"]
    source = inputs["examples"].path
    shards = {split: [str(f) for f in sorted((source / split).glob("*.tfrecord*"))]
              for split in records.SPLITS}
    out = outputs["examples"].path
    num_shards = {split: max(1, len(files)) for split, files in shards.items()}
    try:
        beam_pipeline.run(_build(shards, num_shards, modality, validation, out),
                          getattr(context, "beam", {}))
    except Exception as err:
        corrupt = _find(err, "Corrupt TFRecord file")
        if corrupt:
            raise record_checks.CorruptShard(corrupt) from None
        raise
    beam_pipeline.fill_empty_shards(out, num_shards)
    summaries = json.loads((out / "summary.json").read_text())
    check_count("DataValidator (read)", sum(_count_split(source / s) for s in records.SPLITS),
                {"read": len(summaries)}, source)
    for split in records.SPLITS:  # every good record of a split is in its output
        good = sum(1 for r in summaries if r["split"] == split and r["reason"] is None)
        check_count(f"DataValidator ({split})", good, {split: _count_split(out / split)},
                    out / split)
    if (source / "ingest.json").is_file():  # source metadata (speakers, classes) travels on
        (out / "ingest.json").write_bytes((source / "ingest.json").read_bytes())
    _finish(summaries, outputs, validation, modality, context)


def _build(shards, num_shards, modality, validation, out):
    """The pipeline: `build(pipeline) -> [terminal PCollection]` for `beam_pipeline.run`."""
    numbered = [(split, shard, path) for split, files in shards.items()
                for shard, path in enumerate(files)]

    def read(item):
        split, shard, path = item
        for index, data in record_checks.read_shard(path):
            yield split, shard, path, index, data

    def checked(row):
        split, shard, path, index, data = row
        stats, reason = record_checks.check(data, modality, validation)
        return {"split": split, "shard": shard, "file": path, "record": index,
                "stats": stats, "reason": reason, "data": data}

    def good(row):
        key = (records.SPLITS.index(row["split"]), row["shard"])
        return key, (row["record"], row["data"])

    def build(p):
        import apache_beam as beam

        rows = (p | "Shards" >> beam.Create(numbered) | "Read" >> beam.FlatMap(read)
                | "Check" >> beam.Map(checked))
        written = beam_pipeline.write_shards(
            rows | "Good" >> beam.Filter(lambda r: r["reason"] is None) | beam.Map(good),
            out, records.SPLITS, num_shards)
        summary = (rows | "Summaries" >> beam.Map(
            lambda r: (0, {k: v for k, v in r.items() if k not in ("data", "shard")}))
            | "AllSummaries" >> beam.GroupByKey()
            | "WriteSummary" >> beam.MapTuple(lambda _, rows_: _write_summary(rows_, str(out))))
        return [written, summary]

    return build


def _count_split(folder):
    import tensorflow as tf

    files = sorted(pathlib.Path(folder).glob("*.tfrecord*"))
    return sum(1 for _ in tf.data.TFRecordDataset([str(f) for f in files])) if files else 0


def _find(err, marker):
    seen = err
    while seen is not None:
        text = str(seen)
        if marker in text:
            return text[text.index(marker):].splitlines()[0]
        seen = seen.__cause__ or seen.__context__
    return None


def _write_summary(rows, out):
    ordered = sorted(rows, key=lambda r: (r["file"], r["record"]))
    write_json(pathlib.Path(out) / "summary.json", ordered)
    return len(ordered)


def _finish(rows, outputs, validation, modality, context):
    out = outputs["examples"].path
    bad = [r for r in rows if r["reason"] is not None]
    quarantine = outputs["anomalies"].path / "quarantine.jsonl"
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    with open(quarantine, "w") as f:
        for r in sorted(bad, key=lambda r: (r["file"], r["record"])):
            f.write(json.dumps({"file": r["file"], "record": r["record"],
                                "key": r["stats"].get("key"), "reason": r["reason"]}) + "\n")
    stats = statistics(rows)
    write_json(outputs["statistics"].path / "statistics.json", stats)
    write_json(outputs["schema"].path / "schema.json", schema(rows, modality))
    fraction = len(bad) / max(len(rows), 1)
    outputs["anomalies"].properties.update(bad_records=len(bad), bad_fraction=fraction)
    context.log(f"DataValidator: {len(rows)} records, {len(bad)} quarantined "
                f"({fraction:.1%}) -> {quarantine}")
    if fraction > validation.max_bad_fraction:
        first = "; ".join(f"{r['file']} record {r['record']} ({r['stats'].get('key')}): "
                          f"{r['reason']}" for r in bad[:3])
        raise DataValidationError(
            f"{len(bad)} of {len(rows)} records ({fraction:.1%}) break the schema, more than "
            f"validation.max_bad_fraction={validation.max_bad_fraction}. See {quarantine}. "
            f"First: {first}")
    for split in records.SPLITS:
        if not stats["splits"].get(split, {}).get("count"):
            raise DataValidationError(
                f"Split {split!r} has no valid records (input {out}; quarantine {quarantine}). "
                "Add data or change data.eval_percent/test_percent.")


def statistics(rows):
    """Per split: count, bad count, length min/mean/max, value range, class/speaker counts."""
    out = {"splits": {}}
    for split in records.SPLITS:
        good = [r["stats"] for r in rows if r["split"] == split and r["reason"] is None]
        lengths = [s["length"] for s in good if "length" in s]
        classes = {}
        for s in good:
            for key in ("speaker", "label"):
                if key in s:
                    classes[str(s[key])] = classes.get(str(s[key]), 0) + 1
        out["splits"][split] = {
            "count": len(good),
            "bad": sum(1 for r in rows if r["split"] == split and r["reason"] is not None),
            "length": ({"min": min(lengths), "mean": sum(lengths) / len(lengths),
                        "max": max(lengths)} if lengths else None),
            "value_range": ([min(s.get("min", 0.0) for s in good),
                             max(s.get("max", 0.0) for s in good)] if good else None),
            "classes": classes,
            "sample_rates": sorted({s["sample_rate"] for s in good if "sample_rate" in s}),
        }
    return out


def schema(rows, modality):
    """The schema the train split implies: features, rates, class domain, length range."""
    good = [r["stats"] for r in rows if r["reason"] is None]
    lengths = [s["length"] for s in good if "length" in s]
    return {
        "modality": modality, "features": records.FIELDS[modality],
        "sample_rates": sorted({s["sample_rate"] for s in good if "sample_rate" in s}),
        "classes": sorted({s.get("speaker", s.get("label")) for s in good
                           if "speaker" in s or "label" in s}),
        "length": [min(lengths), max(lengths)] if lengths else None,
    }
