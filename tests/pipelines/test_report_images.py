"""The report's drawings: a spectrogram puts a tone's energy in its frequency row, a chart
draws each series."""

import numpy as np

from pipelines.components import report_images


def test_a_tone_is_brightest_in_its_frequency_row():
    rate = 8000
    t = np.arange(rate) / rate
    image = report_images.spectrogram(np.sin(2 * np.pi * 1000 * t), rate)  # (F, N, 3)
    bins = image.shape[0]
    assert image.shape[1] == 1 + (rate - 256) // 128 and bins == 129
    brightest = int(np.argmax(image.astype(int).sum(axis=(1, 2))))
    assert abs((bins - 1 - brightest) * rate / 256 - 1000) <= rate / 256  # low rows at bottom


def test_line_chart_draws_each_series_in_its_colour():
    chart = np.asarray(report_images.line_chart(
        {"train": [5.0, 4.0, 3.5], "validation": [5.2, 4.4, 4.1]}, "bits", "bits"))
    for colour in report_images.COLOURS[:2]:
        assert (chart == colour).all(axis=-1).sum() > 50
    blank = np.asarray(report_images.line_chart({}, "empty", "bits"))
    assert blank.shape == chart.shape


def test_side_by_side_scales_to_one_height():
    a = np.zeros((10, 4, 3), np.uint8)
    b = np.full((20, 6, 3), 255, np.uint8)
    canvas = report_images.side_by_side([a, b], gap=2, height=40)
    assert canvas.size == (16 * 2 + 12 * 2 + 2, 40)
