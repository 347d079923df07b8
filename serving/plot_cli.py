"""`keras-ar plot`: PNG figures of generated and real samples (`serving.plots`).

    keras-ar plot spectrogram generated.wav real.wav --seconds 1 --out speech.png
    keras-ar plot sequence generated.npz real.npz --dims 0,1,2 --rows 4 --out vowels.png

`spectrogram` draws each 16-bit PCM WAV file's log-magnitude STFT side by side (each at its
own sample rate, all up to the lowest Nyquist frequency unless --max-hz says). `sequence`
draws continuous sequences from .npz files holding `x` [B, T, D] and optionally `lengths`
[B] (what `keras-ar generate --out FILE.npz` writes): one column per file, one row per
feature. Titles default to the file names. Bad input prints one line naming it (exit 2).
"""

import pathlib
import sys

import numpy as np


def add_arguments(parser):
    sub = parser.add_subparsers(dest="figure", required=True)
    spectrogram = sub.add_parser("spectrogram", help="STFT log-magnitude of WAV files, "
                                                     "side by side")
    spectrogram.add_argument("wavs", nargs="+", help="16-bit PCM WAV files")
    spectrogram.add_argument("--seconds", type=float, default=None,
                             help="draw only each file's first S seconds")
    spectrogram.add_argument("--max-hz", "--max_hz", dest="max_hz", type=float,
                             default=None, help="top of the frequency axis (default: the "
                                                "lowest Nyquist frequency of the files)")
    sequence = sub.add_parser("sequence", help="continuous sequences (.npz x, lengths), "
                                               "one column per file")
    sequence.add_argument("npzs", nargs="+", help=".npz files with x [B, T, D] (+ lengths)")
    sequence.add_argument("--dims", default="0,1,2",
                          help="comma-separated features to draw, one row each")
    sequence.add_argument("--rows", type=int, default=4,
                          help="sequences drawn from each file (its first ones)")
    for figure in (spectrogram, sequence):
        figure.add_argument("--titles", default=None,
                            help="comma-separated panel titles (default: the file names)")
        figure.add_argument("--out", required=True, help="the PNG file to write")
        figure.add_argument("--debug", action="store_true",
                            help="show the full traceback of an error")


def run(args):
    """The command; a bad file or flag prints one line naming it (exit 2)."""
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, OSError) as error:
        if args.debug:
            raise
        print(f"keras-ar plot {args.figure}: error: {error} (--debug shows the traceback)",
              file=sys.stderr)
        return 2


def _run(args):
    from serving import plots

    out = pathlib.Path(args.out)
    if out.suffix != ".png":
        raise ValueError(f"--out {args.out!r}: the figure is written as PNG; name a file "
                         f"ending in .png.")
    files = args.wavs if args.figure == "spectrogram" else args.npzs
    titles = _titles(args.titles, files)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.figure == "spectrogram":
        if args.seconds is not None and args.seconds <= 0:
            raise ValueError(f"--seconds {args.seconds}: a positive duration is expected.")
        if args.max_hz is not None and args.max_hz <= 0:
            raise ValueError(f"--max-hz {args.max_hz}: a positive frequency is expected.")
        clips = [_wav(path, args.seconds) for path in files]
        plots.spectrograms(clips, titles, out, max_hz=args.max_hz)
    else:
        sets = [_npz(path) for path in files]
        dims = _dims(args.dims, min(x.shape[2] for x, _ in sets))
        if args.rows < 1:
            raise ValueError(f"--rows {args.rows}: at least one sequence per file is "
                             f"expected.")
        plots.sequences(sets, titles, out, dims=dims, rows=args.rows)
    print(f"wrote {out}")
    return 0


def _titles(text, files):
    if text is None:
        return [pathlib.Path(f).name for f in files]
    titles = text.split(",")
    if len(titles) != len(files):
        raise ValueError(f"--titles has {len(titles)} titles for {len(files)} files; give "
                         f"one per file, comma-separated.")
    return titles


def _existing(path, suffix):
    path = pathlib.Path(path)
    if path.suffix != suffix:
        raise ValueError(f"{path}: expected a {suffix} file; received "
                         f"{path.suffix or 'a name without an extension'}.")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    return path


def _wav(path, seconds):
    """(mono float audio, rate) of a 16-bit PCM WAV file, cut to `seconds`."""
    import wave

    from serving.writers import read_wav

    path = _existing(path, ".wav")
    try:
        audio, rate = read_wav(path.read_bytes(), where=str(path))
    except (wave.Error, EOFError) as error:
        raise ValueError(f"{path}: not a readable WAV file ({error}); expected 16-bit PCM "
                         f"WAV.") from None
    if seconds is not None:
        audio = audio[: int(round(seconds * rate))]
    if not audio.size:
        raise ValueError(f"{path}: the WAV file holds no samples.")
    return audio, rate


def _npz(path):
    """(x float [B, T, D], lengths int [B]) from an .npz file."""
    path = _existing(path, ".npz")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error}).") from None
    with data:
        if "x" not in data.files:
            raise ValueError(f"{path}: holds {sorted(data.files)}; expected `x` [B, T, D] "
                             f"(and `lengths` [B]), as `keras-ar generate --out FILE.npz` "
                             f"writes.")
        x = np.asarray(data["x"], np.float64)
        lengths = (np.asarray(data["lengths"]) if "lengths" in data.files
                   else np.full(len(x), x.shape[1] if x.ndim > 1 else 0))
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or not x.shape[0] or lengths.shape != (x.shape[0],):
        raise ValueError(f"{path}: `x` has shape {list(x.shape)} and `lengths` "
                         f"{list(lengths.shape)}; expected x [B, T, D] (or [B, T]) with B "
                         f">= 1 and lengths [B].")
    return x, np.clip(lengths, 0, x.shape[1])


def _dims(text, depth):
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        raise ValueError(f"--dims {text!r}: comma-separated feature indices are "
                         f"expected, e.g. 0,1,2.") from None
    bad = [d for d in dims if not 0 <= d < depth]
    if bad:
        raise ValueError(f"--dims {text}: {bad} out of range; the sequences have {depth} "
                         f"features (0..{depth - 1}).")
    return dims
