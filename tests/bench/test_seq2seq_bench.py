"""`keras-ar bench --only seq2seq` at a tiny size: rows and plot (bench/seq2seq_bench.py)."""

import matplotlib.image
import numpy as np
import pytest

from bench import plots, report, runner, seq2seq_bench
from keras_ar import contract

TINY = dict(max_source_length=8, channels=8, encoder_dilations=[1, 2],
            decoder_dilations=[1, 2], hidden_dim=8, encoder_layers=1, num_layers=1, heads=2,
            vocab=6, a=1.5, b=2, source_lengths=(2, 4, 8), batches=(1, 3), repeats=1)


@pytest.fixture(scope="module")
def rows():
    return seq2seq_bench.run(settings=TINY)


@pytest.mark.slow
def test_rows_cover_models_runtimes_batches_and_lengths(rows):
    assert {r["benchmark"] for r in rows} == {"seq2seq"}
    params = {r["model"]: r["value"] for r in rows if r["metric"] == "parameters"}
    models = seq2seq_bench.build(TINY)
    assert params == {name: float(m.count_params()) for name, m in models.items()}
    speed = {(r["model"], r["runtime"], r["batch"]) for r in rows if r["unit"] == "tokens/s"}
    assert speed == {(m, rt, b) for m in seq2seq_bench.MODELS for rt in seq2seq_bench.RUNTIMES
                     for b in TINY["batches"]}
    lengths = [r for r in rows if r["metric"] == "ms per decode"]
    assert len(lengths) == len(seq2seq_bench.MODELS) * len(seq2seq_bench.RUNTIMES) * 3
    for r in lengths:  # the target follows ByteNet's unfolding rule for both models
        assert r["target_length"] == contract.unfolded_length(1.5, 2, r["source_length"])
    assert {r["target_length"] for r in lengths} == {5, 8, 14}
    assert all(r["value"] > 0 for r in lengths + [r for r in rows if r["unit"] == "tokens/s"])
    # the line ms = c + m T through each model and runtime's three points
    fits = {(r["model"], r["runtime"], r["metric"][:2]): r["value"] for r in rows
            if "fit over T" in r["case"]}
    assert len(fits) == 3 * len(seq2seq_bench.MODELS) * len(seq2seq_bench.RUNTIMES)
    for model in seq2seq_bench.MODELS:
        for runtime in seq2seq_bench.RUNTIMES:
            mine = [r for r in lengths if (r["model"], r["runtime"]) == (model, runtime)]
            t = np.array([r["target_length"] for r in mine], float)
            ms = np.array([r["value"] for r in mine])
            slope, intercept = np.polyfit(t, ms, 1)
            assert fits[model, runtime, "m:"] == pytest.approx(slope)
            assert fits[model, runtime, "c:"] == pytest.approx(intercept)
            fitted = intercept + slope * t
            r2 = 1 - ((ms - fitted) ** 2).sum() / ((ms - ms.mean()) ** 2).sum()
            assert fits[model, runtime, "R^"] == pytest.approx(r2)
    full = [r for r in rows if r["unit"] == "tokens/s" and r["batch"] == 3]
    assert all("source 8, target 14" in r["case"] for r in full)


@pytest.mark.slow
def test_plot_and_report(rows, tmp_path):
    written = plots.write_plots(rows, "Test CPU, 2 cores, ISA: avx2", tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in map(str, written)] == ["seq2seq.png"]
    data = (tmp_path / "seq2seq.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 15_000
    height, width = matplotlib.image.imread(tmp_path / "seq2seq.png").shape[:2]
    assert width > 800 and height > 300
    meta = {"time": "now", "cpu": "Test CPU", "command": runner.command_line(
        ["seq2seq"], "out", True), "benchmarks": ["seq2seq"], "quick": True}
    page = report.markdown_report(rows, meta, runner.DESCRIPTIONS)
    assert "## seq2seq" in page and page.count("| ByteNet ") >= 8
    assert "keras-ar bench --out out --only seq2seq --quick" in page
