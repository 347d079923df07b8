"""Japanese Vowels (Kudo, Toyama & Shimbo 1999; UCI): variable-length 12-dim sequences.

640 utterances of /ae/ by 9 male speakers: 12 LPC cepstrum coefficients per frame, 7 to 29
frames each; the official split has 270 train and 370 test utterances. The data ship inside the
`sktime` wheel as `sktime/datasets/data/JapaneseVowels/JapaneseVowels_{TRAIN,TEST}.ts`; this
module reads those files directly (it never imports sktime, pandas or anything downloaded).

`.ts` format: header lines start with `#` or `@`; each data line holds the 12 dimensions
separated by `:` (comma-separated values each, same length), then the class label (1..9).
"""

import importlib.util
import os

import numpy as np

NUM_SPEAKERS = 9
FEATURE_DIM = 12
MAX_LENGTH = 29
SPLITS = ("train", "test")
_RELATIVE = os.path.join("datasets", "data", "JapaneseVowels")


class JapaneseVowelsUnavailable(RuntimeError):
    """The data files are not installed; the message says what to install."""


def data_dir():
    """The directory holding the `.ts` files inside the installed sktime package."""
    spec = importlib.util.find_spec("sktime")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise JapaneseVowelsUnavailable(
            "The Japanese Vowels data come with the `sktime` wheel, which is not installed. "
            "Install it into the environment (`.venv/bin/pip install sktime==1.2.0`, pinned in "
            "requirements/lock.txt), or pass `directory=` pointing at a folder holding "
            "JapaneseVowels_TRAIN.ts and JapaneseVowels_TEST.ts. keras-ar never downloads data.")
    return os.path.join(list(spec.submodule_search_locations)[0], _RELATIVE)


def parse_ts(path):
    """-> (list of float32 [length, 12] arrays, int32 labels 0..8)."""
    sequences, labels = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line[0] in "#@":
                continue
            *dims, label = line.split(":")
            columns = [np.array(d.split(","), dtype=np.float32) for d in dims]
            if len(columns) != FEATURE_DIM or len({c.size for c in columns}) != 1:
                raise ValueError(
                    f"{path}:{number}: expected {FEATURE_DIM} dimensions of equal length; "
                    f"received {len(columns)} with lengths {sorted({c.size for c in columns})}.")
            sequences.append(np.stack(columns, axis=-1))
            labels.append(int(label) - 1)
    return sequences, np.asarray(labels, np.int32)


def load(split="train", directory=None, pad_to=MAX_LENGTH):
    """-> {"x": float32 [N, pad_to, 12] zero-padded, "lengths": int32 [N],
    "global_condition": int32 [N] speaker ids 0..8}."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}; received {split!r}.")
    directory = data_dir() if directory is None else directory
    path = os.path.join(directory, f"JapaneseVowels_{split.upper()}.ts")
    if not os.path.exists(path):
        raise JapaneseVowelsUnavailable(
            f"{path} not found: the installed sktime does not ship the Japanese Vowels files. "
            "Install sktime==1.2.0 (requirements/lock.txt) or pass `directory=`.")
    sequences, labels = parse_ts(path)
    longest = max(len(s) for s in sequences)
    if longest > pad_to:
        raise ValueError(f"`pad_to`={pad_to} is shorter than the longest sequence ({longest}).")
    x = np.zeros((len(sequences), pad_to, FEATURE_DIM), np.float32)
    for i, s in enumerate(sequences):
        x[i, :len(s)] = s
    lengths = np.asarray([len(s) for s in sequences], np.int32)
    return {"x": x, "lengths": lengths, "global_condition": labels}
