"""`keras-ar bench`'s outputs: PNG plots (bench/plots.py) and results.md (bench/report.py).

Rows come from real runs: a tiny equal-budget training (bench/image_training.py, the image
quality bench's learning-curve rows) run here, and the rows a `keras-ar bench --quick` run
wrote for the generation benchmarks (tests/bench/data/quick_rows.json).
"""

import json
import pathlib
import re

import numpy as np
import pytest

from bench import image_quality_bench, image_training, plots, report, runner
from keras_ar.models import PixelCNN

DATA = pathlib.Path(__file__).parent / "data" / "quick_rows.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CPU = "Test CPU, 2 cores, ISA: avx2"


def _saved():
    saved = json.loads(DATA.read_text())
    return saved["meta"], saved["rows"]


def _assert_png(path):
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert len(data) > 15_000, f"{path.name} is only {len(data)} bytes"
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > 500 and height > 300


@pytest.fixture(scope="module")
def curve_rows():
    """Learning-curve rows of a real (tiny) equal-budget training of two models."""
    images = np.random.default_rng(0).integers(0, 2, (96, 4, 4, 1)).astype("uint8")
    factories = {name: (lambda f=filters: PixelCNN(image_shape=(4, 4, 1), num_levels=2,
                                                   num_layers=1, filters=f))
                 for name, filters in (("PixelCNN", 8), ("GatedPixelCNN", 4))}
    test = images[64:]
    trainers, _ = image_training.train_models(factories, images[:64], test, 2, budget_s=0.9,
                                              slice_s=0.3, count_tracing=False,
                                              curve_images=test)
    rows = []
    for name, trainer in trainers.items():
        rows += image_quality_bench._curve_rows(f"tiny 4x4: {name}", trainer, test, None)
    return rows


@pytest.mark.slow
def test_curve_rows_record_every_slice(curve_rows):
    assert len(curve_rows) >= 4  # >= 2 slices for each of 2 models
    steps = [r["step"] for r in curve_rows if r["case"].endswith("PixelCNN")
             and not r["case"].endswith("GatedPixelCNN")]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert all(r["unit"] == "bits/dim" and 0 < r["value"] < 20 for r in curve_rows)


def test_every_plot_is_a_png_from_the_rows(tmp_path, curve_rows):
    _, rows = _saved()
    rows = rows + curve_rows
    ran = {r["benchmark"] for r in rows}
    expected = sorted(name for name, (benchmarks, _) in plots.PLOTS.items()
                      if ran.intersection(benchmarks))
    assert "wavenet_length.png" in expected and "image_learning_curves.png" in expected
    written = plots.write_plots(rows, CPU, tmp_path)
    assert sorted(pathlib.Path(p).name for p in written) == expected
    for path in written:
        _assert_png(pathlib.Path(path))
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_plot_whose_benchmark_did_not_run_is_not_written(tmp_path):
    _, rows = _saved()
    wavenet = [r for r in rows if r["benchmark"] == "wavenet"]
    written = {pathlib.Path(p).name for p in plots.write_plots(wavenet, CPU, tmp_path)}
    assert written == {"wavenet_length.png", "cached_vs_naive.png"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)


def test_results_md_has_the_machine_and_a_table_per_benchmark(tmp_path, curve_rows):
    meta, rows = _saved()
    rows = rows + [dict(r, benchmark="images_quality") for r in curve_rows]
    meta = dict(meta, benchmarks=meta["benchmarks"] + ["images_quality"])
    runner.write_results(str(tmp_path), rows, meta)
    text = (tmp_path / "results.md").read_text()
    assert f"- machine: {meta['cpu']}" in text and "ISA:" in meta["cpu"]
    assert f"- date: {meta['time']}" in text
    assert f"- command: `{meta['command']}`" in text
    for name in meta["benchmarks"]:
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        table = [line for line in section.splitlines() if line.startswith("| ")]
        assert table[0] == "| case | metric | value | unit |"
        assert len(table) >= 2, f"no rows in the {name} table"
    assert "image_learning_curves.png" in text
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows


def test_command_line_names_only_what_ran():
    assert runner.command_line(list(runner.BENCHMARKS), "out", False) == \
        "keras-ar bench --out out"
    assert runner.command_line(["wavenet", "runtimes"], "o", True) == \
        "keras-ar bench --out o --only wavenet,runtimes --quick"


def test_report_values_are_readable():
    assert report._value(16000.4) == "16,000" and report._value(0.000993) == "0.000993"


def test_the_docs_embed_committed_plots():
    root = pathlib.Path(__file__).resolve().parents[2]
    text = (root / "docs" / "benchmarks.md").read_text()
    embedded = re.findall(r"!\[[^\]]*\]\((img/bench/[\w.-]+\.png)\)", text)
    assert embedded and {pathlib.Path(p).name for p in embedded} <= set(plots.PLOTS)
    for path in embedded:
        _assert_png(root / "docs" / path)
