"""Log-mel frames in NumPy: the local features a vocoder WaveNet takes, computed from a WAV.

The definition (the input pipeline computes the same in the graph,
`pipelines.data.features.log_mel`; tested equal): frame t describes samples
[t * hop, (t + 1) * hop).

    frames    = ceil(N / hop)
    window t  = audio[t * hop + hop / 2 - L / 2 : + L]   (L = frame_length = 4 hop, zero-padded
                                                          at both ends; centred on its hop)
    |S_t|     = |rfft(hann(L) * window t, n_fft)|        (n_fft = next power of two >= L)
    mel_t     = |S_t| @ W                                 (W: HTK mel triangles, 60 Hz .. sr / 2)
    feature_t = (log(mel_t + 1e-3) - OFFSET) / SCALE      (roughly in [-1.5, 2] for speech)

Silence maps to `silence_value()` in every band, the value padding frames get. A model's
manifest carries `describe(...)` under `decoding.local_features`, so `keras-ar generate
--local-condition speech.wav` computes the frames the model was trained on.
"""

import pathlib

import numpy as np

from serving.writers import read_wav

FLOOR = 1e-3
OFFSET = -3.0
SCALE = 3.0
LOW_HZ = 60.0
KINDS = ("log_mel",)


def frame_length(hop):
    return 4 * int(hop)


def fft_length(hop):
    return 1 << (frame_length(hop) - 1).bit_length()


def silence_value():
    return float((np.log(FLOOR) - OFFSET) / SCALE)


def num_frames(num_samples, hop):
    return -(-int(num_samples) // int(hop))


def log_mel(audio, sample_rate, hop, num_mels):
    """float audio `[N]` in [-1, 1] -> float32 `[ceil(N / hop), num_mels]`."""
    audio = np.asarray(audio, np.float32).reshape(-1)
    length, n_fft = frame_length(hop), fft_length(hop)
    left = length // 2 - hop // 2
    padded = np.pad(audio, (left, length))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)  # periodic Hann
    starts = np.arange(num_frames(len(audio), hop)) * hop
    frames = np.stack([padded[s:s + length] * window for s in starts])  # (frames, L)
    spectrum = np.abs(np.fft.rfft(frames, n_fft))  # (frames, n_fft / 2 + 1)
    mel = spectrum @ mel_weights(num_mels, n_fft, sample_rate)
    return ((np.log(mel + FLOOR) - OFFSET) / SCALE).astype(np.float32)


def mel_weights(num_mels, n_fft, sample_rate):
    """`[n_fft / 2 + 1, num_mels]` as TensorFlow's `linear_to_mel_weight_matrix` (HTK mel,
    triangles, the DC bin zeroed)."""
    def mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)

    hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)[1:]
    spectrum_mel = mel(hz)[:, None]
    edges = np.linspace(mel(LOW_HZ), mel(sample_rate / 2.0), num_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (spectrum_mel - lower) / (center - lower)
    falling = (upper - spectrum_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)


def describe(kind, sample_rate, hop, num_mels):
    """What a generator needs to compute the features itself (saved in the manifest)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown local feature kind {kind!r}; choose from {list(KINDS)}.")
    return {"kind": kind, "sample_rate": int(sample_rate), "hop": int(hop),
            "num_mels": int(num_mels), "frame_length": frame_length(hop),
            "fft_length": fft_length(hop), "low_hz": LOW_HZ, "floor": FLOOR,
            "offset": OFFSET, "scale": SCALE, "silence": silence_value()}


def from_wav(path, description):
    """A 16-bit PCM WAV at the model's rate -> its frames `[frames, num_mels]`."""
    audio, rate = read_wav(pathlib.Path(path).read_bytes(), str(path))
    if rate != description["sample_rate"]:
        raise ValueError(
            f"{path} is sampled at {rate} Hz; the model's features are at "
            f"{description['sample_rate']} Hz. Resample it first (e.g. `sox {path} -r "
            f"{description['sample_rate']} out.wav`).")
    return log_mel(audio, rate, description["hop"], description["num_mels"])
