"""The `beam:` section: a bad runner, option or Dask address fails when the config loads
(nothing written), a rerun on another runner is a cache hit, and ExampleGen + DataValidator
write the same bytes on the DirectRunner (in_memory and multi_processing) and the DaskRunner
on a real scheduler with 2 worker processes."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from pipelines import config as config_lib
from pipelines import runner as pipeline_runner
from pipelines.components import beam_pipeline

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INGEST = ["ExampleGen", "DataValidator"]
MULTI_PROCESSING = {"options": {"direct_running_mode": "multi_processing",
                                "direct_num_workers": 2}}


def tiny_raw(beam=None):
    """60 fortunes, 2 shards a split; the 10 over 79 bytes are quarantined."""
    return {
        "name": "beam_tiny",
        "data": {"source": "fortunes", "modality": "tokens", "options": {"files": ["fortunes"]},
                 "max_examples": 60, "num_shards": 2, "eval_percent": 20, "test_percent": 20,
                 "window": 64},
        "validation": {"max_bad_fraction": 0.9, "max_length": 80},
        "model": {"family": "causal_transformer",
                  "params": {"vocab_size": 257, "num_layers": 1, "num_heads": 1,
                             "hidden_dim": 8, "max_length": 64}},
        "beam": beam or {},
    }


def _load(beam):
    return config_lib.from_dict(tiny_raw(beam), "tiny.yaml")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("beam, match", [
    ({"runner": "DaskRuner"}, r"`beam.runner` = 'DaskRuner' is unknown.*did you mean "
                              r"'DaskRunner'"),
    ({"options": {"direct_num_workers": "two"}},
     r"`beam.options.direct_num_workers` = 'two' \(str\) is invalid; expected an integer"),
    ({"options": {"direct_running_mode": "multi"}},
     r"`beam.options.direct_running_mode` = 'multi'.*one of \['in_memory', "),
    ({"options": {"direct_num_workrs": 2}},
     r"`beam.options.direct_num_workrs` = 2: Beam has no pipeline option.*direct_num_workers"),
    ({"options": {"save_main_session": "yes"}},
     r"`beam.options.save_main_session` = 'yes' \(str\).*expected true or false"),
    ({"runner": "DaskRunner", "options": {"dask_npartitions": 2.5}},
     r"`beam.options.dask_npartitions` = 2.5 \(float\) is invalid; expected an integer"),
    ({"options": {"runner": "DaskRunner"}}, r"`beam.options.runner` is not an option here"),
])
def test_bad_runner_or_option_fails_at_load_naming_the_key(beam, match):
    with pytest.raises(config_lib.ConfigError, match=r"tiny.yaml: " + match):
        _load(beam)


def test_environment_overrides_the_runner(monkeypatch):
    monkeypatch.setenv("KERAS_AR_BEAM_RUNNER", "NoSuchRunner")
    with pytest.raises(config_lib.ConfigError, match="NoSuchRunner.*environment variable "
                                                     "KERAS_AR_BEAM_RUNNER"):
        _load({})
    monkeypatch.setenv("KERAS_AR_BEAM_RUNNER", "DaskRunner")
    monkeypatch.setenv("KERAS_AR_BEAM_RUNNING_MODE", "multi_processing")
    from pipelines import beam_options

    effective = beam_options.settings(_load({}).beam)
    assert effective["runner"] == "DaskRunner"
    assert effective["options"]["direct_running_mode"] == "multi_processing"
    assert effective["options"]["dask_npartitions"] == beam_options.DEFAULT_DASK_PARTITIONS


def test_dask_address_that_does_not_answer_fails_before_anything_is_written(tmp_path, capsys):
    """`keras-ar pipeline run` (in process) with --set: one line naming the key, the value
    and the fix; the pipeline root gets no metadata store and no artifact."""
    from pipelines import cli

    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(tiny_raw()))
    root = tmp_path / "root"
    code = cli.main(["pipeline", "run", str(config), "--pipeline-root", str(root),
                     "--set", "beam.runner=DaskRunner",
                     "--set", f"beam.options.dask_client_address={address}"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"`beam.options.dask_client_address` = '{address}' does not answer" in err
    assert "dask scheduler" in err
    assert not root.exists()


def _ingest(config, root):
    report = pipeline_runner.run(config, root, components=INGEST, logger=lambda m: None)
    return {name: (state, outputs) for name, state, outputs in report}


def test_a_rerun_on_another_runner_is_a_cache_hit(tmp_path):
    """The runner is not in ExampleGen's or DataValidator's cache key: a rerun with
    multi_processing reuses the in_memory outputs (they would be the same bytes)."""
    first = _ingest(_load({}), tmp_path)
    assert [first[n][0] for n in INGEST] == ["COMPLETE", "COMPLETE"]
    second = _ingest(_load(MULTI_PROCESSING), tmp_path)
    assert [second[n][0] for n in INGEST] == ["CACHED", "CACHED"]
    assert second["DataValidator"][1]["examples"].uri == first["DataValidator"][1]["examples"].uri
    changed = _ingest(config_lib.from_dict(dict(tiny_raw(), validation={
        "max_bad_fraction": 0.9, "max_length": 300}), "tiny.yaml"), tmp_path)
    assert [changed[n][0] for n in INGEST] == ["CACHED", "COMPLETE"]  # the key still works


def test_every_branch_runs_and_empty_shards_are_written(tmp_path):
    """`beam_pipeline.run` joins the branches (the DaskRunner runs only what leads to the last
    transform); shards that get no record exist as empty files."""
    import apache_beam as beam

    def build(p):
        rows = p | beam.Create([((0, 0), (1, b"b")), ((0, 0), (0, b"a")), ((2, 1), (0, b"c"))])
        return [beam_pipeline.write_shards(rows, tmp_path, ("train", "eval", "test"),
                                           {"train": 3, "eval": 1, "test": 2}, "W"),
                p | "Other" >> beam.Create([1]) | beam.Map(
                    lambda _: (tmp_path / "side.txt").write_text("ran"))]

    assert beam_pipeline.run(build, {}) == "DirectRunner"
    beam_pipeline.fill_empty_shards(tmp_path, {"train": 3, "eval": 1, "test": 2})
    import tensorflow as tf

    def read(split, shard, n):
        path = beam_pipeline.shard_path(tmp_path, split, shard, n)
        return [r.numpy() for r in tf.data.TFRecordDataset([str(path)])]

    assert read("train", 0, 3) == [b"a", b"b"] and read("test", 1, 2) == [b"c"]
    assert read("train", 2, 3) == [] and read("eval", 0, 1) == []
    assert (tmp_path / "side.txt").read_text() == "ran"


@pytest.fixture
def dask_cluster(tmp_path):
    """A real Dask cluster on 127.0.0.1: `dask scheduler` and `dask worker --nworkers 2`
    (2 worker processes under a nanny), importing this checkout; yields (address, client)."""
    from distributed import Client

    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    scheduler_file = tmp_path / "scheduler.json"
    cli = [sys.executable, "-m"]
    logs = open(tmp_path / "dask.log", "w")
    procs = [subprocess.Popen(cli + ["distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                     "--port", "0", "--no-dashboard", "--scheduler-file",
                                     str(scheduler_file)], cwd=REPO, env=env, stdout=logs,
                              stderr=subprocess.STDOUT)]
    try:
        deadline = time.time() + 120
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.5)
        procs.append(subprocess.Popen(
            cli + ["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                   "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                   "--host", "127.0.0.1"], cwd=REPO, env=env, stdout=logs,
            stderr=subprocess.STDOUT))
        address = json.loads(scheduler_file.read_text())["address"]
        client = Client(address, timeout=120)
        client.wait_for_workers(2, timeout=180)
        yield address, client
        client.close()
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        logs.close()


def _outputs(root, report):
    """{relative path: bytes} of every ExampleGen/DataValidator output file except the
    timing-bearing ingest.json."""
    files = {}
    for _, outputs in report.values():
        for artifact in outputs.values():
            for path in sorted(artifact.path.rglob("*")):
                if path.is_file() and path.name != "ingest.json":
                    files[str(path.relative_to(root))] = path.read_bytes()
    return files


def _transitions(client):
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)


@pytest.mark.slow
def test_direct_multi_processing_and_dask_write_the_same_bytes(tmp_path, dask_cluster):
    """The same root path for each runner (moved away after each run), so the quarantine's
    file paths match too: shards, quarantine, statistics, schema and summary are
    byte-identical on DirectRunner in_memory, multi_processing (2 workers) and DaskRunner on
    the 2-worker cluster, whose scheduler runs the Dask graph."""
    address, client = dask_cluster
    runners = {"in_memory": {}, "multi_processing": MULTI_PROCESSING,
               "dask": {"runner": "DaskRunner", "options": {"dask_client_address": address}}}
    root, files, ingests = tmp_path / "root", {}, {}
    for name, beam in runners.items():
        before = _transitions(client)
        report = _ingest(_load(beam), root)
        assert [report[n][0] for n in INGEST] == ["COMPLETE", "COMPLETE"], name
        scheduled = _transitions(client) - before
        assert (scheduled > 0) == (name == "dask"), (name, scheduled)
        files[name] = _outputs(root, report)
        ingests[name] = json.loads(
            (report["ExampleGen"][1]["examples"].path / "ingest.json").read_text())
        root.rename(tmp_path / name)
    assert [ingests[n]["runner"] for n in runners] == ["DirectRunner", "DirectRunner",
                                                       "DaskRunner"]
    counts = ingests["in_memory"]["counts"]
    assert sum(counts.values()) == 60 and min(counts.values()) > 0
    quarantine = [k for k in files["in_memory"] if k.endswith("quarantine.jsonl")]
    assert len(quarantine) == 1 and files["in_memory"][quarantine[0]].count(b"\n") == 10
    shards = [k for k in files["in_memory"] if k.endswith(".tfrecord")]
    assert len(shards) == 12  # 3 splits x 2 shards, ExampleGen and DataValidator
    for name in ("multi_processing", "dask"):
        assert sorted(files[name]) == sorted(files["in_memory"]), name
        different = [k for k in files[name] if files[name][k] != files["in_memory"][k]]
        assert not different, (name, different)
