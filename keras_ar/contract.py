"""The step protocol, as data: names every runtime agrees on.

This module is importable without TensorFlow, so serving clients and runtime drivers
(`serving/`) can read it in processes that have only the exported artifacts.

Every autoregressive model exports the same signatures (endpoints). Their tensors follow one
naming rule on every target (SavedModel, TFLite, ONNX):

* inputs: ``x_prev``, ``x``, ``state_<key>``, ``global_condition``, ``local_condition``,
  ``noise``, ``temperature``, ``top_k``, ``top_p`` (and ``batch_template`` for ``init_state``
  of an unconditioned model; ``prompt``/``prompt_length`` for ``generate``);
* outputs: ``params``, ``x_next``, ``new_state_<key>``, ``log_prob`` (and ``x``/``lengths``
  for ``generate``).

An output never shares a name with an input (ONNX value names are global), hence the
``state_`` / ``new_state_`` prefixes. Every input has a leading batch dimension, positions
included: the state always holds ``index: int32[B]``.

It also owns the on-disk layout every package shares: the manifest (`read_manifest`), the
artifact files (`artifact_kind`) and TF Serving's version folders (`versions`).
"""

import json
import pathlib
import re

MANIFEST_SCHEMA_VERSION = 1
MANIFEST_FILENAME = "generation_spec.json"

# Endpoint (signature) names.
INIT_STATE = "init_state"
PREFILL = "prefill"
STEP = "step"
SAMPLE_STEP = "sample_step"
#: K sampling steps in one call, the state passed in and returned (`x [B, K, ...]`, `lengths`,
#: `stop`); K is the noise's second axis. Older artifacts may lack it (read the manifest).
SAMPLE_CHUNK = "sample_chunk"
LOG_PROB = "log_prob"
GENERATE = "generate"
GENERATE_SEEDED = "generate_seeded"
ENDPOINTS = (GENERATE, LOG_PROB, INIT_STATE, PREFILL, STEP, SAMPLE_STEP, SAMPLE_CHUNK)

# Input tensor names.
X = "x"
X_PREV = "x_prev"
GLOBAL_CONDITION = "global_condition"
LOCAL_CONDITION = "local_condition"
LENGTHS = "lengths"
NOISE = "noise"
TEMPERATURE = "temperature"
TOP_K = "top_k"
TOP_P = "top_p"
SEED = "seed"
PROMPT = "prompt"
PROMPT_LENGTH = "prompt_length"
BATCH_TEMPLATE = "batch_template"
CONDITION_KEYS = (GLOBAL_CONDITION, LOCAL_CONDITION)
SAMPLING_CONTROLS = (TEMPERATURE, TOP_K, TOP_P)

# Output tensor names.
PARAMS = "params"
X_NEXT = "x_next"
#: `sample_step` of a model that samples stop flags: int32 [B], 1 when the row ends after
#: `x_next` (that value is kept and counted in the row's length). `sample_chunk`: 1 when the
#: row ended inside the chunk (at a sampled flag or a stop token), after `lengths` values.
STOP = "stop"
LOG_PROB_OUTPUT = "log_prob"

# State.
INDEX_KEY = "index"
STATE_INPUT_PREFIX = "state_"
STATE_OUTPUT_PREFIX = "new_state_"


def state_input_name(key):
    """Name of the input tensor that carries state entry ``key``."""
    _check_state_key(key)
    return STATE_INPUT_PREFIX + key


def state_output_name(key):
    """Name of the output tensor that carries the updated state entry ``key``."""
    _check_state_key(key)
    return STATE_OUTPUT_PREFIX + key


def state_key_from_name(name):
    """Inverse of `state_input_name` / `state_output_name`; None for other tensors."""
    for prefix in (STATE_OUTPUT_PREFIX, STATE_INPUT_PREFIX):
        if name.startswith(prefix):
            return name[len(prefix):]
    return None


def _check_state_key(key):
    if not isinstance(key, str) or not key or not key.replace("_", "").isalnum():
        raise ValueError(
            f"State keys must be non-empty identifiers of letters, digits and '_'; "
            f"received {key!r}."
        )


def chunk_feed_errors(shapes):
    """Messages for `sample_chunk` feeds whose shapes disagree ({input name: shape tuple}).

    K is `noise`'s second axis (K >= 1); every input has `noise`'s batch; `local_condition`
    has one entry per chunk position ([B, K, ...]) and `prompt` at most K ([B, P <= K, ...]).
    Pure Python, so clients, drivers and servers check before any runtime allocates."""
    noise = shapes.get(NOISE)
    if noise is None or len(noise) < 2:
        return [f"`{NOISE}` must be [batch, K, ...] (K = the chunk's positions); received "
                f"{None if noise is None else list(noise)}."]
    batch, k = noise[0], noise[1]
    errors = [] if k >= 1 else [
        f"`{NOISE}` {list(noise)} has K = {k} positions; a chunk samples K >= 1, one per "
        f"noise row."]
    for name, shape in sorted(shapes.items()):
        if not shape:
            errors.append(f"`{name}` is a scalar; [batch, ...] with batch {batch} is expected.")
            continue
        if shape[0] != batch:
            errors.append(f"`{name}` {list(shape)} has batch {shape[0]}; `{NOISE}` "
                          f"{list(noise)} has batch {batch}: every input of a chunk must have "
                          f"the same batch.")
        if name == LOCAL_CONDITION and (len(shape) < 2 or shape[1] != k):
            errors.append(f"`{name}` {list(shape)} must cover the chunk's K = {k} positions "
                          f"([batch, K, ...]).")
        if name == PROMPT and len(shape) >= 2 and shape[1] > k:
            errors.append(f"`{name}` {list(shape)} covers {shape[1]} positions; at most "
                          f"K = {k} are expected.")
    return errors


#: `generate_seeded`'s number of positions per row (the generated `x` is [B, max(num_steps)]).
NUM_STEPS = "num_steps"


def batch_errors(shapes):
    """Messages for inputs whose leading (batch) sizes disagree ({input name: shape tuple}):
    every input of every endpoint is batch-major, so a batch-1 control or condition beside
    B-row tensors is refused rather than broadcast."""
    sized = {name: tuple(shape) for name, shape in shapes.items()}
    scalars = sorted(name for name, shape in sized.items() if not shape)
    errors = [f"`{name}` is a scalar; every input is [batch, ...] (one entry per row)."
              for name in scalars]
    batches = {name: shape[0] for name, shape in sized.items() if shape}
    if len(set(batches.values())) > 1:
        listed = ", ".join(f"`{n}` {list(sized[n])}" for n in sorted(batches))
        errors.append(f"Every input must have the same batch (leading) size; received "
                      f"{listed}. Send one row per sequence in each input.")
    return errors


def range_error(name, array, low, high, low_open=False, high_open=False, integral=False,
                kind=None):
    """A message when `array` holds a value outside [low, high] (open ends as flagged)."""
    import numpy as np

    values = np.asarray(array)
    if values.size == 0:
        return None
    as_float = values.astype(np.float64)
    bad = ~np.isfinite(as_float)
    if low is not None:
        bad |= (as_float <= low) if low_open else (as_float < low)
    if high is not None:
        bad |= (as_float >= high) if high_open else (as_float > high)
    if integral:
        bad |= as_float != np.round(as_float)
    if not bad.any():
        return None
    first = values.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
    interval = (("(" if low_open else "[") + ("-inf" if low is None else f"{low:g}") + ", "
                + ("inf" if high is None else f"{high:g}") + (")" if high_open else "]"))
    kind = kind or ("integers" if integral else "finite values")
    return (f"`{name}` holds {first!r} (at flat position {int(np.argmax(bad.reshape(-1)))}); "
            f"{kind} in {interval} are expected.")


def feed_value_errors(feeds, num_classes=0):
    """Messages for feed values the step protocol does not define ({name: array}): sampling
    controls (`temperature` >= 0, `top_k` >= 0, `top_p` in (0, 1]), `noise` in [0, 1),
    class ids (`global_condition` integers in [0, num_classes); >= 0 when unknown),
    `prompt_length` in [0, prompt positions], `lengths` in [0, x positions], `num_steps`
    >= 0. Pure numpy: hosts and servers check before any runtime sees the feeds."""
    import numpy as np

    def positions(name):
        shape = np.shape(feeds[name]) if name in feeds else ()
        return shape[1] if len(shape) >= 2 else None

    checks = [(TEMPERATURE, 0, None, False, False, False),
              (TOP_K, 0, None, False, False, True),
              (TOP_P, 0, 1, True, False, False),
              (NOISE, 0, 1, False, True, False),
              (NUM_STEPS, 0, None, False, False, True),
              (PROMPT_LENGTH, 0, positions(PROMPT), False, False, True),
              (LENGTHS, 0, positions(X), False, False, True)]
    errors = []
    for name, low, high, low_open, high_open, integral in checks:
        if name in feeds:
            errors.append(range_error(name, feeds[name], low, high, low_open, high_open,
                                       integral))
    condition = feeds.get(GLOBAL_CONDITION)
    if condition is not None and np.asarray(condition).dtype.kind in "iu":
        errors.append(range_error(GLOBAL_CONDITION, condition, 0,
                                   num_classes if num_classes else None,
                                   high_open=True, integral=True, kind="class ids"))
    return [e for e in errors if e]



# ----------------------------------------------------------------- sequence to sequence
#: The layout of a source (`local_condition` of ByteNet and EncoderDecoderTransformer).
SOURCE_LAYOUT = ("[batch, source_length] int32 source ids, each row's tokens then the pad id "
                 "(= source_vocab_size)")


def unfolded_length(a, b, source_length):
    """ByteNet's target length rule U = floor(a * n + 1e-4) + b for source length(s) n, in
    float32 arithmetic (the rounding its graphs use); an int, or int64 values for an array."""
    import numpy as np

    scaled = np.float32(a) * np.asarray(source_length, np.float32) + np.float32(1e-4)
    out = np.floor(scaled).astype(np.int64) + int(b)
    return int(out) if out.ndim == 0 else out


def source_errors(ids, vocab_size, max_length, name=LOCAL_CONDITION):
    """Messages for source ids that break `SOURCE_LAYOUT` ({array} [B, S]): rank 2, integer
    ids, 1 <= S <= max_length, ids in [0, vocab_size] (vocab_size = the pad id), at least one
    token per row, pads only trailing. `vocab_size` or `max_length` None: not checked. Pure
    numpy, the checks the models run on the same values (`keras_ar.models.source_ids`)."""
    import numpy as np

    ids = np.asarray(ids)
    if ids.ndim != 2:
        return [f"`{name}` has shape {list(ids.shape)}; expected {SOURCE_LAYOUT}."]
    if ids.size and ids.dtype.kind not in "iu":
        return [f"`{name}` has dtype {ids.dtype.name}; integer source ids are expected."]
    if max_length is not None and not 1 <= ids.shape[1] <= max_length:
        return [f"`{name}` has {ids.shape[1]} source positions (shape {list(ids.shape)}); "
                f"this model takes 1 to max_source_length={max_length}. Shorten the source "
                f"or use a model with a larger max_source_length."]
    if vocab_size is None:
        return []
    bad = range_error(name, ids, 0, vocab_size, integral=True,
                      kind=f"source ids (pad = {vocab_size})")
    if bad:
        return [bad]
    is_pad = ids == vocab_size
    empty = np.flatnonzero(is_pad.all(axis=1))
    if empty.size:
        return [f"`{name}` row {int(empty[0])} is empty (only pad ids {vocab_size}); every "
                f"source needs at least one token. Drop empty rows."]
    inner = np.flatnonzero((is_pad[:, :-1] & ~is_pad[:, 1:]).any(axis=1))
    if inner.size:
        return [f"`{name}` row {int(inner[0])} has a token after a pad id {vocab_size}; "
                f"expected {SOURCE_LAYOUT}. Move the padding to the end of each row."]
    return []

# ----------------------------------------------------------------- on-disk layout
#: The file that makes a directory a SavedModel (and a TF Serving version complete).
SAVED_MODEL_FILE = "saved_model.pb"
TFLITE_FILE = "model.tflite"
#: A TF Serving version folder's name: a non-negative integer (TF Serving's int64).
VERSION_NAME = re.compile(r"^[0-9]{1,18}$")


def artifact_kind(directory):
    """"savedmodel", "tflite" or "onnx" for an exported artifact directory (checked in that
    order: a TF Serving version may hold `model.tflite` beside `saved_model.pb`); None when
    `directory` holds none of them."""
    directory = pathlib.Path(directory)
    if (directory / SAVED_MODEL_FILE).is_file():
        return "savedmodel"
    if (directory / TFLITE_FILE).is_file():
        return "tflite"
    if directory.is_dir() and any(directory.glob("*.onnx")):
        return "onnx"
    return None


def versions(base_path, complete=True):
    """Sorted integer versions under a TF Serving base path `<base_path>/<version>/`.

    `complete`: only the folders holding `saved_model.pb` (what TF Serving loads); else every
    integer-named folder (a half-copied one too: its number is taken)."""
    base = pathlib.Path(base_path)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir()
                  if VERSION_NAME.match(p.name) and p.is_dir()
                  and (not complete or (p / SAVED_MODEL_FILE).is_file()))


def next_version(base_path):
    """The version a new export takes: the highest integer folder, complete or not, + 1."""
    return max(versions(base_path, complete=False), default=0) + 1


def read_manifest(path):
    """The manifest (`generation_spec.json`) of an artifact, read with the standard library.

    `path`: a `generation_spec.json` file, an artifact directory (SavedModel, TFLite or ONNX
    export dir, or a TF Serving version dir) or a file inside one (e.g. `model.tflite`).
    """
    path = pathlib.Path(path)
    candidates = [path] if path.suffix == ".json" else []
    base = path if path.is_dir() else path.parent
    candidates += [base / MANIFEST_FILENAME, base / "assets" / MANIFEST_FILENAME]
    for candidate in candidates:
        if candidate.is_file():
            manifest = json.loads(candidate.read_text())
            version = manifest.get("schema_version")
            if version != MANIFEST_SCHEMA_VERSION:
                raise ValueError(
                    f"{candidate}: manifest schema_version {version!r} is not supported (this "
                    f"code reads {MANIFEST_SCHEMA_VERSION}); re-export or upgrade keras-ar.")
            return manifest
    raise FileNotFoundError(
        f"No {MANIFEST_FILENAME} found for {str(path)!r} (looked at "
        f"{[str(c) for c in candidates]}). Export the model with `keras-ar export`.")
