"""The token path end to end: fortunes -> byte windows -> CausalTransformer -> export to every
target -> push -> text samples from each target."""

import json
import os

import pytest

from pipelines import config as config_lib
from pipelines import runner
from pipelines.components import repository

TARGETS = ("savedmodel", "tflite", "onnx")


def _tiny_text_config(tmp):
    return config_lib.from_dict({
        "name": "tiny_text",
        "data": {"source": "fortunes", "modality": "tokens", "options": {"files": ["fortunes"]},
                 "max_examples": 40, "num_shards": 1, "eval_percent": 20,
                 "test_percent": 20, "window": 32, "batch_size": 4},
        "validation": {"min_length": 2, "max_length": 100000},
        "model": {"family": "causal_transformer",
                  "params": {"vocab_size": 257, "num_layers": 1, "num_heads": 2,
                             "hidden_dim": 16, "max_length": 64}},
        "training": {"steps": 2, "steps_per_epoch": 1},
        # 2 training steps test the plumbing, not learning: no unigram gate here
        "evaluation": {"max_batches": 1, "max_bits_per_sample": 9.0, "max_regression": 0.0,
                       "beat_unigram": False},
        "export": {"targets": list(TARGETS), "verify_parity": False},
        "push": {"serving_base_path": os.path.join(str(tmp), "serving")},
        "generation": {"num_samples": 2, "num_steps": 24, "temperature": 1.0, "seed": 0},
    }, "tiny_text")


@pytest.mark.slow
def test_text_pipeline_writes_text_samples_from_every_target(tmp_path):
    import numpy as np

    from serving.backend import make_backend
    from serving.generator import Generator

    config = _tiny_text_config(tmp_path)
    report = runner.run(config, tmp_path / "root", logger=lambda m: None)
    states = {name: state for name, state, _ in report}
    assert set(states.values()) == {"COMPLETE"}, states
    assert repository.versions(config.push.serving_base_path) == [1]
    outputs = dict((n, o) for n, _, o in report)
    samples = outputs["SampleGen"]["samples"].path
    summary = json.loads((samples / "samples.json").read_text())
    assert sorted(summary["targets"]) == sorted(TARGETS), summary
    texts = {target: [(samples / f"{target}_{i}.txt").read_bytes() for i in range(2)]
             for target in TARGETS}
    # the same seeded noise gives the same samples on every target
    for target in TARGETS:
        assert texts[target] == texts["savedmodel"], (target, texts)
    # each file is the bytes of its generated row before the first stop id (256)
    exported = outputs["Exporter"]["exported_model"].path / "export" / "savedmodel"
    generated = Generator(make_backend("savedmodel", exported)).generate(
        24, batch_size=2, seed=0, temperature=1.0)
    ids = np.asarray(generated["x"])
    assert ids.shape == (2, 24)
    for i, row in enumerate(ids.tolist()):
        end = next((j for j, v in enumerate(row) if v == 256), len(row))
        assert all(0 <= v < 256 for v in row[:end])
        assert texts["savedmodel"][i] == bytes(row[:end]), (i, row)
    assert any(texts["savedmodel"]), texts  # not every row stops at once


def test_text_sample_ends_at_the_first_stop_id(tmp_path):
    import numpy as np

    from pipelines.components import sample_gen

    rows = np.array([[72, 105, 256, 65, 66], [79, 75, 33, 10, 104]], np.int32)
    files = sample_gen._write(rows, "onnx", tmp_path, {"modality": "tokens"}, {})
    assert files == ["onnx_0.txt", "onnx_1.txt"]
    assert (tmp_path / "onnx_0.txt").read_bytes() == b"Hi"
    assert (tmp_path / "onnx_1.txt").read_bytes() == b"OK!\nh"
