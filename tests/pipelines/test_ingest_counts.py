"""Nothing is lost between a stage's input and its output: ExampleGen writes every record
the source offers, repeatedly and under load, and a count that does not add up fails the
stage by name."""

import json
import os
import subprocess
import sys

import pytest

from pipelines.components import example_gen

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# One process, one fresh Beam pipeline and output folder per argument: the imports and the
# espeak warm-up are paid once, the ingests are as many as before.
INGEST = """
import json, pathlib, sys, time, types
import yaml
from pipelines.components import example_gen
data = yaml.safe_load(open("pipelines/configs/speech_wavenet.yaml"))["data"]
for arg in sys.argv[1:]:
    out = pathlib.Path(arg)
    start = time.time()
    art = types.SimpleNamespace(path=out, properties={}, uri=str(out))
    example_gen.execute({}, {"examples": art}, {"data": data},
                        types.SimpleNamespace(log=print, run_id="count-test"))
    print(json.dumps({"seconds": time.time() - start}), flush=True)
"""


def test_a_lost_record_fails_the_stage_by_name():
    example_gen.check_count("ExampleGen", 120, {"train": 84, "eval": 15, "test": 21}, "x")
    with pytest.raises(example_gen.RecordCountError,
                       match=r"ExampleGen: 120 records in, 119 written .*lost"):
        example_gen.check_count("ExampleGen", 120, {"train": 83, "eval": 15, "test": 21},
                                "runs/x")
    with pytest.raises(example_gen.RecordCountError, match="duplicated"):
        example_gen.check_count("DataValidator (train)", 3, {"train": 4}, "runs/x")


def _burn(seconds):
    """A CPU-bound process beside the ingest (the load under which records were lost); None
    under pytest-xdist, where the other workers' tests load the cores already (`make test`
    starts the longest files, this one among them, together)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    code = f"import time\nt = time.time()\nwhile time.time() - t < {seconds}: pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


@pytest.mark.slow
def test_ingest_repeated_under_load_keeps_every_record(tmp_path):
    """Eight fresh ingests of the speech corpus (120 records, each a new Beam pipeline into a
    new folder) beside a busy core (`_burn`): every one writes 120 (the multi-threaded DirectRunner
    lost one in 2 of 14 such runs here)."""
    outs = [tmp_path / f"run{run}" for run in range(8)]
    burner = _burn(900)
    try:
        done = subprocess.run([sys.executable, "-c", INGEST, *map(str, outs)], cwd=REPO,
                              check=True, capture_output=True, text=True, timeout=900,
                              env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3"))
    finally:
        if burner is not None:
            burner.kill()
    seconds = [json.loads(line)["seconds"] for line in done.stdout.splitlines()
               if line.startswith("{")]
    assert len(seconds) == 8 and max(seconds) < 300, done.stdout
    totals = [json.loads((out / "ingest.json").read_text())["records"] for out in outs]
    assert totals == [120] * 8
