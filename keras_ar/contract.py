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
"""

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
