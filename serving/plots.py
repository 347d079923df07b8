"""Figures of generated and real samples, drawn with matplotlib (imported when drawing, with
its Agg canvas: no display, no global pyplot state).

    spectrograms(clips, titles, out)   one log-magnitude STFT panel per clip, side by side
    sequences(sets, titles, out)       one column per set of sequences, one row per feature

Figures are written atomically (`serving.writers.write_bytes`) as 256-colour PNGs (Pillow, a
matplotlib dependency).
"""

import io

import numpy as np

RANGE_DB = 80.0  # each panel shows its loudest bin down to 80 dB below it
FRAME_S, HOP_S = 0.032, 0.008  # Hann frames of 32 ms every 8 ms


def stft_db(audio, rate):
    """Log magnitude [F, N] in dB relative to the clip's loudest bin (floored at -RANGE_DB),
    of Hann frames of FRAME_S every HOP_S; frequencies 0 .. rate / 2 in F bins."""
    audio = np.asarray(audio, np.float64)
    size = int(round(FRAME_S * rate))
    hop = max(1, int(round(HOP_S * rate)))
    if audio.size < size:
        audio = np.pad(audio, (0, size - audio.size))
    count = 1 + (audio.size - size) // hop
    index = np.arange(size)[None, :] + hop * np.arange(count)[:, None]  # (N, size)
    magnitude = np.abs(np.fft.rfft(audio[index] * np.hanning(size), axis=1))  # (N, F)
    db = 20 * np.log10(magnitude + 1e-10)
    return np.maximum(db - db.max(), -RANGE_DB).T


def spectrograms(clips, titles, out, max_hz=None):
    """`clips` [(audio [T] in [-1, 1], rate)] -> one PNG with a panel per clip (time in
    seconds across, 0 .. max_hz up; default: the lowest Nyquist frequency, so every panel
    shows the same band)."""
    top = max_hz or min(rate for _, rate in clips) / 2
    figure = _figure((3.2 * len(clips) + 0.8, 3.0))
    axes = figure.subplots(1, len(clips), sharey=True, squeeze=False)[0]
    for axis, (audio, rate), title in zip(axes, clips, titles):
        image = axis.imshow(stft_db(audio, rate), origin="lower", aspect="auto",
                            cmap="magma", vmin=-RANGE_DB, vmax=0,
                            extent=(0, len(audio) / rate, 0, rate / 2))
        axis.set_ylim(0, top)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    figure.colorbar(image, ax=list(axes), label="dB below the loudest bin", pad=0.02)
    _save(figure, out)


def sequences(sets, titles, out, dims=(0, 1, 2), rows=4):
    """`sets` [(x [B, T, D], lengths [B])] -> one PNG: a column per set, a row per feature in
    `dims`; each panel draws the first `rows` sequences' values of that feature over their
    frames (up to each one's length). Panels of one feature share the y axis."""
    figure = _figure((3.2 * len(sets) + 0.4, 1.9 * len(dims) + 0.6))
    axes = figure.subplots(len(dims), len(sets), sharey="row", sharex=True, squeeze=False)
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
               "tab:pink", "tab:grey", "tab:olive", "tab:cyan")
    for column, ((x, lengths), title) in enumerate(zip(sets, titles)):
        axes[0, column].set_title(title, fontsize=9)
        axes[-1, column].set_xlabel("frame")
        for row, dim in enumerate(dims):
            for i in range(min(rows, len(x))):
                axes[row, column].plot(x[i, : int(lengths[i]), dim], marker=".",
                                       markersize=3, linewidth=1,
                                       color=colours[i % len(colours)])
    for row, dim in enumerate(dims):
        axes[row, 0].set_ylabel(f"feature {dim}")
    _save(figure, out)


def _figure(size):
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100, layout="constrained")


def _save(figure, out):
    """The figure as a 256-colour palette PNG (a fraction of the RGBA file's size)."""
    from PIL import Image

    from serving.writers import write_bytes

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        palette = image.convert("RGB").quantize(colors=256)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    write_bytes(out, buffer.getvalue())
