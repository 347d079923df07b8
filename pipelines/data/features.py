"""Local-conditioning features in the input pipeline's graph: log-mel frames of the audio.

A WaveNet conditioned on these is a vocoder (Shen et al. 2018, "Natural TTS Synthesis by
Conditioning WaveNet on Mel Spectrogram Predictions", arXiv 1712.05884). The definition, the
constants and the NumPy twin that `keras-ar generate` uses on a WAV file are in
`serving.audio_features` (tested equal to this graph).
"""

from serving.audio_features import (
    FLOOR,
    LOW_HZ,
    OFFSET,
    SCALE,
    fft_length,
    frame_length,
    silence_value,
)

__all__ = ["log_mel", "silence_value"]


def log_mel(audio, sample_rate, hop, num_mels):
    """float audio `[N]` in [-1, 1] -> float32 features `[ceil(N / hop), num_mels]` (graph)."""
    import tensorflow as tf

    length, n_fft = frame_length(hop), fft_length(hop)
    count = (tf.shape(audio)[0] + hop - 1) // hop
    padded = tf.pad(audio, [[length // 2 - hop // 2, length]])
    stft = tf.signal.stft(padded, length, hop, n_fft, window_fn=tf.signal.hann_window)
    weights = tf.signal.linear_to_mel_weight_matrix(
        num_mels, n_fft // 2 + 1, sample_rate, LOW_HZ, sample_rate / 2.0)
    mel = tf.matmul(tf.abs(stft[:count]), weights)  # (frames, num_mels)
    return (tf.math.log(mel + FLOOR) - OFFSET) / SCALE
