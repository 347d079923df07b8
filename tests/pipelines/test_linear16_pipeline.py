"""16-bit linear PCM end to end: linear levels in, a logistic-mixture WaveNet over 65,536
levels, parity-gated SavedModel/TFLite/ONNX exports, 16-bit WAVs decoded linearly."""

import json
import wave

import numpy as np
import pytest

from pipelines import runner
from serving import writers
from tests.pipelines import helpers


@pytest.mark.slow
def test_linear16_mixture_wavenet_pipeline(tmp_path):
    params = dict(helpers.TINY_WAVENET, num_classes=65536, mu_law=False,
                  head="logistic_mixture", num_mixtures=3)
    config = helpers.pipeline_config(
        tmp_path, data__quantization_channels=65536, data__audio_encoding="linear",
        model__params=params, evaluation__max_bits_per_sample=17.0,
        export__targets=["savedmodel", "tflite", "onnx"], export__verify_parity=True,
        generation__num_steps=40)
    report = {name: outputs for name, _, outputs in
              runner.run(config, tmp_path / "root", logger=lambda m: None)}
    exported = report["Exporter"]["exported_model"].path / "export"
    decoding = json.loads((exported / "generation_spec.json").read_text())["decoding"]
    assert decoding["num_classes"] == 65536 and decoding["mu_law"] is False
    bits = json.loads((report["Evaluator"]["evaluation"].path / "evaluation.json").read_text())
    assert 0.0 < bits["unigram_bits_per_position"] <= 16.0
    samples = report["SampleGen"]["samples"].path
    rows = {}
    for target in ("savedmodel", "tflite", "onnx"):
        files = sorted(samples.glob(f"{target}_*.wav"))
        assert len(files) == 2  # one per speaker
        with wave.open(str(files[0])) as w:
            assert (w.getframerate(), w.getsampwidth(), w.getnframes()) == (8000, 2, 40)
            rows[target] = np.frombuffer(w.readframes(40), "<i2")
    # The gate held every target to Keras within one of 65,536 levels per teacher-forced
    # step (`sample_level_tolerance`); free-running rows may drift apart after such a step.
    parity = json.loads((report["Exporter"]["exported_model"].path
                         / "export_report.json").read_text())["parity"]
    steps = [r for r in parity if r[1] == "sample_step x64" and r[2].startswith("x_next")]
    assert {r[0] for r in steps} == {"savedmodel", "tflite", "onnx"}
    assert all(r[2] == "x_next (+-1 level)" and r[-1] for r in steps)
    mu_law_grid = np.round(writers.decode_audio(np.arange(256), 256, True) * 32767)
    off_grid = np.setdiff1d(rows["savedmodel"], mu_law_grid)
    assert len(off_grid) >= 10  # 16-bit levels, not the 256-level mu-law grid
