"""How speech-like generated audio is, measured without a model: spectral flatness of the
frames that carry voice energy.

Spectral flatness of a frame is the geometric over the arithmetic mean of its power spectrum
(Wiener entropy): 1 for white noise, near 0 for a few harmonics (voiced speech). Silence would
count as flat noise, so only "voiced-energy" frames are scored: frames whose RMS is within
`energy_db` (default 30 dB) of the loudest frame of the clip and above an absolute floor of
`SILENCE_DBFS` (-50 dB of full scale), so a clip that is silent, or nearly so, has no voiced
frames instead of scoring its quantisation hiss. Each frame's mean is removed first: a DC offset
is not a harmonic. Speech synthesised by espeak-ng measures 0.07-0.25 over all frames; white
noise ~0.56 with a Hann window.

    median_flatness(audio, sample_rate) -> (median flatness of voiced frames, voiced fraction)
"""

import numpy as np

FRAME_S, HOP_S = 0.032, 0.016  # 32 ms frames, 16 ms hop
SILENCE_DBFS = -50.0  # frames quieter than this (RMS re full scale 1.0) are silence


def frames(audio, sample_rate):
    """Hann-windowed frames [N, L] of a float clip [T], each frame's mean removed (empty
    when T < L)."""
    audio = np.asarray(audio, np.float64).reshape(-1)
    length, hop = int(FRAME_S * sample_rate), int(HOP_S * sample_rate)
    if audio.size < length:
        return np.zeros((0, length))
    count = 1 + (audio.size - length) // hop
    index = np.arange(length)[None, :] + hop * np.arange(count)[:, None]
    framed = audio[index]  # (N, L)
    framed = framed - framed.mean(axis=1, keepdims=True)
    return framed * np.hanning(length)[None, :]


def flatness(framed, eps=1e-12):
    """Spectral flatness per frame [N]: exp(mean log P) / mean P of the power spectrum."""
    power = np.abs(np.fft.rfft(framed, axis=1)) ** 2 + eps
    return np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)


def median_flatness(audio, sample_rate, energy_db=30.0):
    """(median flatness over voiced-energy frames, fraction of frames that are voiced);
    (nan, 0.0) for a clip shorter than one frame or all silence (no frame above
    `SILENCE_DBFS`)."""
    framed = frames(audio, sample_rate)
    if not len(framed):
        return float("nan"), 0.0
    rms = np.sqrt(np.mean(framed ** 2, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-12))  # dB re full scale
    voiced = (level > level.max() - energy_db) & (level > SILENCE_DBFS)
    if not voiced.any():
        return float("nan"), 0.0
    return float(np.median(flatness(framed[voiced]))), float(np.mean(voiced))


def decode_wav(data, rate):
    """Float audio at `rate` from WAV bytes (resampled when the file's rate differs)."""
    from serving.writers import read_wav

    pcm, source = read_wav(data)
    if source != rate:
        from scipy.signal import resample_poly

        pcm = resample_poly(pcm, rate, source)
    return pcm


def _clips(paths, examples, rate):
    """(name, float audio at `rate`) from WAV files and/or an examples split's TFRecords."""
    import glob

    def decode(data):
        return decode_wav(data, rate)

    for path in paths:
        with open(path, "rb") as f:
            yield path, decode(f.read())
    if examples:
        import tensorflow as tf

        from pipelines.data import records

        for file in sorted(glob.glob(f"{examples}/*.tfrecord*")):
            for data in tf.data.TFRecordDataset(file):
                record = records.deserialize(data.numpy())
                yield record["key"], decode(record["audio"])


def main(argv=None):
    """`python -m pipelines.components.audio_metrics [WAV ...] [--examples DIR] --rate R`:
    each clip's voiced-frame flatness, then the medians (clips resampled to R first)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("wavs", nargs="*")
    parser.add_argument("--examples", help="an ExampleGen split folder of audio records")
    parser.add_argument("--rate", type=int, default=8000, help="the model's sample rate")
    args = parser.parse_args(argv)
    values = []
    for name, audio in _clips(args.wavs, args.examples, args.rate):
        values.append(median_flatness(audio, args.rate))
        print(f"{name}: flatness {values[-1][0]:.3f}, voiced {values[-1][1]:.2f}")
    if values:
        print(f"median of {len(values)}: flatness {np.nanmedian([v for v, _ in values]):.3f}, "
              f"voiced {np.median([f for _, f in values]):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
