"""PNG drawings for the run report, with Pillow only: line charts and spectrograms.

    line_chart(series, title, y_label) -> PIL image   (series: {name: [y per epoch]})
    spectrogram(audio, sample_rate) -> uint8 [F, N, 3]  (log power, 80 dB range, time ->)
"""

import numpy as np

COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))
# A dark-to-bright colour map (black, purple, orange, yellow) for log power.
_MAP = np.array([(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)],
                np.float64)


def line_chart(series, title, y_label, size=(560, 320)):
    """One polyline per named series over its index (epochs), axes labelled with the range."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 60, 30, size[0] - 20, size[1] - 40
    values = [v for ys in series.values() for v in ys if np.isfinite(v)]
    draw.text((left, 8), title, fill="black")
    draw.rectangle((left, top, right, bottom), outline="black")
    if not values:
        return image
    low, high = min(values), max(values)
    high = high if high > low else low + 1.0
    count = max(len(ys) for ys in series.values())
    for i, (name, ys) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = [(left + (right - left) * (j / max(count - 1, 1)),
                   bottom - (bottom - top) * ((y - low) / (high - low)))
                  for j, y in enumerate(ys) if np.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        elif points:
            draw.ellipse((points[0][0] - 2, points[0][1] - 2, points[0][0] + 2,
                          points[0][1] + 2), fill=colour)
        draw.text((right - 150, top + 6 + 14 * i), f"{name}: {ys[-1]:.3f}" if ys else name,
                  fill=colour)
    draw.text((4, top), f"{high:.2f}", fill="black")
    draw.text((4, bottom - 10), f"{low:.2f}", fill="black")
    draw.text((4, (top + bottom) // 2), y_label, fill="black")
    draw.text((left, bottom + 8), "epoch 1", fill="black")
    draw.text((right - 50, bottom + 8), f"epoch {count}", fill="black")
    return image


def spectrogram(audio, sample_rate, range_db=80.0):
    """Colour image [F, N, 3] of the clip's log power (32 ms Hann frames, 16 ms hop; low
    frequencies at the bottom); a blank column strip for a clip shorter than one frame."""
    from pipelines.components.audio_metrics import frames

    framed = frames(audio, sample_rate)
    if not len(framed):
        return np.zeros((framed.shape[1] // 2 + 1, 1, 3), np.uint8)
    power = np.abs(np.fft.rfft(framed, axis=1)) ** 2  # (N, F)
    db = 10 * np.log10(power + 1e-12)
    level = np.clip((db - (db.max() - range_db)) / range_db, 0.0, 1.0).T[::-1]  # (F, N)
    position = level * (len(_MAP) - 1)
    index = np.minimum(position.astype(int), len(_MAP) - 2)
    frac = (position - index)[..., None]
    colour = _MAP[index] * (1 - frac) + _MAP[index + 1] * frac
    return colour.astype(np.uint8)


def side_by_side(images, gap=8, height=None):
    """Images [H, W, 3] placed left to right on white, each scaled to `height` rows."""
    from PIL import Image

    pils = [Image.fromarray(image) for image in images]
    height = height or max(p.height for p in pils)
    pils = [p.resize((max(1, round(p.width * height / p.height)) * 2, height), Image.NEAREST)
            for p in pils]
    canvas = Image.new("RGB", (sum(p.width for p in pils) + gap * (len(pils) - 1), height),
                       "white")
    x = 0
    for p in pils:
        canvas.paste(p, (x, 0))
        x += p.width + gap
    return canvas
