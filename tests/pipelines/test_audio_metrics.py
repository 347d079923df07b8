"""Spectral flatness tells noise from voiced sound: white noise is flat, a few harmonics are
not, silence is not scored."""

import numpy as np

from pipelines.components import audio_metrics

RATE = 8000


def test_noise_is_flat_and_harmonics_are_not():
    rng = np.random.default_rng(0)
    noise, voiced = audio_metrics.median_flatness(rng.normal(size=RATE), RATE)
    assert 0.45 < noise < 0.65 and voiced > 0.95
    t = np.arange(RATE) / RATE
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    harmonic, _ = audio_metrics.median_flatness(tone, RATE)
    assert harmonic < 0.05


def test_silence_is_not_scored():
    t = np.arange(RATE) / RATE
    clip = np.concatenate([np.sin(2 * np.pi * 200 * t[:RATE // 4]), np.zeros(3 * RATE // 4)])
    value, voiced = audio_metrics.median_flatness(clip, RATE)
    assert value < 0.05 and 0.2 < voiced < 0.35
    for clip in (np.zeros(RATE), np.zeros(10)):  # all silence; shorter than one frame
        value, voiced = audio_metrics.median_flatness(clip, RATE)
        assert np.isnan(value) and voiced == 0.0


def test_near_silence_and_a_dc_offset_are_not_voiced_speech():
    """A generated clip stuck at one mu-law level near zero (hiss ~-70 dBFS) has no voiced
    frames; a DC offset is not a harmonic, so it does not make noise look voiced."""
    rng = np.random.default_rng(2)
    hiss = 3e-4 * rng.choice([-1.0, 1.0], RATE)
    value, voiced = audio_metrics.median_flatness(hiss, RATE)
    assert np.isnan(value) and voiced == 0.0
    noise = 0.05 * rng.normal(size=RATE)
    plain, _ = audio_metrics.median_flatness(noise, RATE)
    offset, voiced = audio_metrics.median_flatness(noise + 0.5, RATE)
    assert abs(offset - plain) < 0.02 and offset > 0.45 and voiced > 0.95


def test_the_command_scores_wav_files(tmp_path, capsys):
    from serving import writers

    rng = np.random.default_rng(1)
    writers.write_wav(tmp_path / "noise.wav", 0.3 * rng.uniform(-1, 1, RATE), RATE)
    assert audio_metrics.main([str(tmp_path / "noise.wav"), "--rate", str(RATE)]) == 0
    out = capsys.readouterr().out
    flat = float(out.split("flatness ")[1].split(",")[0])
    assert 0.45 < flat < 0.65 and "median of 1" in out
