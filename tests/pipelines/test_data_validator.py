"""DataValidator: bad records quarantined with reasons; corrupt shards and empty splits fail
with errors naming the file and record."""

import dataclasses
import json

import pytest

from pipelines import config as config_lib
from pipelines.components import record_checks, specs
from pipelines.components.base import Artifact, ExecutionContext
from pipelines.components.data_validator import DataValidationError
from tests.pipelines import helpers


def _run(tmp_path, source, max_bad_fraction=0.5):
    outputs = {name: Artifact(kind, str(tmp_path / "out" / name))
               for name, kind in specs.DATA_VALIDATOR.outputs.items()}
    params = {"validation": dataclasses.asdict(config_lib.ValidationConfig(
        max_bad_fraction=max_bad_fraction, allowed_sample_rates=[16000])),
        "modality": "audio"}
    specs.DATA_VALIDATOR.run_executor(
        {"examples": Artifact("Examples", str(source))}, outputs, params,
        ExecutionContext(str(tmp_path), "k", "r", log=lambda m: None))
    return outputs


def _bad_rows():
    unreadable = dict(helpers.audio_record(100), key="bad/unreadable", audio=b"RIFFjunk")
    wrong_rate = dict(helpers.audio_record(101), key="bad/rate", sample_rate=8000)
    return [unreadable, wrong_rate]


def _read(out):
    return [json.loads(line) for line in open(out["anomalies"].path / "quarantine.jsonl")]


def test_bad_records_are_quarantined_with_reasons(tmp_path):
    src = tmp_path / "src"
    helpers.write_examples(src, "audio", count=(8, 3, 3))
    helpers.write_split(src, "train", [helpers.audio_record(i) for i in range(8)] + _bad_rows(),
                        "audio")
    out = _run(tmp_path, src)
    bad = {row["key"]: row for row in _read(out)}
    assert set(bad) == {"bad/unreadable", "bad/rate"}
    assert "unreadable audio" in bad["bad/unreadable"]["reason"]
    assert "wrong sample rate" in bad["bad/rate"]["reason"]
    # rows 0..9 alternate between two shards: row 8 is record 4 of shard 0, row 9 of shard 1
    assert bad["bad/unreadable"]["file"].endswith("train/data-00000-of-00002.tfrecord")
    assert bad["bad/rate"]["file"].endswith("train/data-00001-of-00002.tfrecord")
    assert bad["bad/unreadable"]["record"] == bad["bad/rate"]["record"] == 4
    stats = json.loads((out["statistics"].path / "statistics.json").read_text())
    assert stats["splits"]["train"]["count"] == 8 and stats["splits"]["train"]["bad"] == 2
    schema = json.loads((out["schema"].path / "schema.json").read_text())
    assert schema["sample_rates"] == [16000] and schema["classes"] == [0, 1]


def test_too_many_bad_records_fail_naming_the_quarantine(tmp_path):
    src = tmp_path / "src"
    helpers.write_examples(src, "audio", count=(4, 2, 2))
    helpers.write_split(src, "train", [helpers.audio_record(0)] + _bad_rows(), "audio")
    with pytest.raises(DataValidationError, match=r"quarantine.jsonl.*bad/unreadable|"
                                                  r"quarantine.jsonl"):
        _run(tmp_path, src, max_bad_fraction=0.1)


def test_corrupt_tfrecord_names_file_and_record(tmp_path):
    src = tmp_path / "src"
    helpers.write_examples(src, "audio", count=(6, 2, 2))
    shard = sorted((src / "train").glob("*.tfrecord"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # break the CRC of a record in the middle
    shard.write_bytes(bytes(data))
    with pytest.raises(record_checks.CorruptShard, match=rf"{shard.name}: record \d+"):
        _run(tmp_path, src)


def test_empty_split_after_validation_fails(tmp_path):
    src = tmp_path / "src"
    helpers.write_examples(src, "audio", count=(6, 2, 2))
    helpers.write_split(src, "test", _bad_rows(), "audio")
    with pytest.raises(DataValidationError, match="Split 'test' has no valid records"):
        _run(tmp_path, src, max_bad_fraction=0.5)
