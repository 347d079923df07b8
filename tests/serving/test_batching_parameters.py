"""`--batching_parameters_file`: TF Serving's text-format BatchingParameters, strictly."""

import os
import subprocess
import sys

import pytest

from serving.batching_parameters import BatchingParameters
from tests.serving.conftest import REPO

STOCK = """
# as stock TF Serving reads it
max_batch_size { value: 32 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 4 }
num_batch_threads { value: 3 }
allowed_batch_sizes: 8
allowed_batch_sizes: 16
allowed_batch_sizes: 32
"""


def test_stock_file_parses_with_its_values():
    params = BatchingParameters.from_text(STOCK)
    assert params.as_dict() == {"max_batch_size": 32, "batch_timeout_micros": 2000,
                                "max_enqueued_batches": 4, "num_batch_threads": 3,
                                "allowed_batch_sizes": [8, 16, 32]}
    assert [params.padded_size(n) for n in (1, 8, 9, 17, 32)] == [8, 8, 16, 32, 32]
    defaults = BatchingParameters.from_text("")
    assert (defaults.max_batch_size, defaults.batch_timeout_micros,
            defaults.max_enqueued_batches) == (1000, 0, 10)
    assert defaults.padded_size(7) == 7


@pytest.mark.parametrize("text, expected", [
    ("max_batch_sise { value: 8 }", ['no field named "max_batch_sise"', "max_batch_size {"]),
    ("thread_pool_name { value: \"x\" }", ["`thread_pool_name`", "remove it"]),
    ("max_batch_size: 8", ["max_batch_size: 8", "wrapped as `max_batch_size { value: 32 }`"]),
    ("max_batch_size { value: \"many\" }", ['"many"', "Couldn't parse integer"]),
    ("max_batch_size { value: 0 }", ["`max_batch_size` is 0", "a positive integer"]),
    ("batch_timeout_micros { value: -5 }", ["`batch_timeout_micros` is -5", "non-negative"]),
    ("num_batch_threads { value: -1 }", ["`num_batch_threads` is -1"]),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 2",
     ["[4, 2]", "increasing"]),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4",
     ["`allowed_batch_sizes` is [4]", "equals max_batch_size (8)", "add 8 at its end"]),
])
def test_bad_file_names_field_value_and_fix(text, expected):
    with pytest.raises(ValueError) as error:
        BatchingParameters.from_text(text, source="batching.txt")
    message = str(error.value)
    assert message.startswith("batching.txt: ")
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize("text, expected", [
    ("max_batch_size { value: 8 }\nmax_enqueued_batchez { value: 1 }",
     ['2:1', 'no field named "max_enqueued_batchez"']),
    ("max_enqueued_batches { value: 0 }", ["`max_enqueued_batches` is 0", "positive integer"]),
])
def test_serve_refuses_a_bad_file_at_start(tmp_path, text, expected):
    """`keras-ar serve` exits before loading anything, naming the file, field and value."""
    path = tmp_path / "batching.txt"
    path.write_text(text)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "serve", "--port=0",
         f"--model_base_path={tmp_path / 'missing'}", "--enable_batching",
         f"--batching_parameters_file={path}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "READY" not in done.stdout
    assert f"keras-ar serve: {path}: " in done.stderr, done.stderr
    for part in expected:
        assert part in done.stderr, done.stderr
