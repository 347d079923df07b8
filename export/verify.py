"""The parity gate: every target gives Keras' numbers, or the export stops with a diff table.

For each exported signature and each target (SavedModel, TFLite, ONNX) the same inputs must
give float outputs (params, state, log_prob, decoded audio) within `atol` (+ `rtol` x |Keras|)
of the Keras model run eagerly, and integer outputs (x_next, x, lengths, index) exactly.
Then `sample_step` is driven for `num_steps` (>= 64) steps on every runtime, each feeding
back its own `x_next` and `new_state_*`, from the same noise: the samples must be identical.

Runners (`export.runners`, named here too) share one interface, `run(signature, feeds:
{name: ndarray}) -> {name: ndarray}`; `runners_for(directory)` opens whatever `export_all`
wrote there.
"""

import pathlib

import numpy as np

from export import manifest as manifest_lib
from export.runners import (  # noqa: F401  (callers reach the runners through verify)
    RUNNERS,
    keras_runner,
    onnx_runner,
    runners_for,
    saved_model_runner,
    tflite_runner,
)
from export.runners import as_numpy as _numpy
from keras_ar import contract

STEP_SCALE_RTOL = 1e-5  # sample_step params: tolerance per unit of the step's largest |param|


class ParityError(AssertionError):
    """Raised with the diff table when a target disagrees with Keras; `failed_targets` names
    the targets with a failing row and `rows` holds the full table."""

    def __init__(self, message, rows=()):
        super().__init__(message)
        self.rows = list(rows)
        self.failed_targets = sorted({row[0] for row in self.rows if not row[-1]})


# --------------------------------------------------------------------------------- inputs
def _fill(spec, batch, length, rng, model):
    shape = [batch if i == 0 else (length if d is None else d)
             for i, d in enumerate(spec.shape.as_list())]
    if spec.dtype.is_floating:
        return rng.normal(size=shape).astype(spec.dtype.as_numpy_dtype)
    classes = int(getattr(model, "num_global_classes", 0) or 1)
    return (np.arange(int(np.prod(shape))) % classes).reshape(shape).astype(
        spec.dtype.as_numpy_dtype)


def example_conditions(model, batch, length, seed=0):
    rng = np.random.default_rng(seed)
    return {name: _fill(spec, batch, length, rng, model)
            for name, spec in sorted(model.condition_specs(False).items())}


def _controls(batch):
    temperature = np.where(np.arange(batch) % 2 == 0, 1.0, 0.8).astype("float32")
    top_k = np.where(np.arange(batch) % 2 == 0, 0, 3).astype("int32")
    top_p = np.where(np.arange(batch) % 2 == 0, 1.0, 0.9).astype("float32")
    return {contract.TEMPERATURE: temperature, contract.TOP_K: top_k,
            contract.TOP_P: top_p}


def _noise(model, shape, rng):
    return rng.uniform(size=tuple(shape) + tuple(model.noise_spec)).astype("float32")


def example_feeds(model, names=contract.ENDPOINTS, batch=2, length=8, seed=0):
    """{signature: {input: ndarray}}: valid inputs drawn from the model itself."""
    rng = np.random.default_rng(seed)
    whole = example_conditions(model, batch, length, seed)
    controls = _controls(batch)
    x = np.asarray(model.generate_from_noise(
        _noise(model, [batch, length], rng), conditions=whole or None, **controls)[contract.X])
    start = np.full((batch, 1) + x.shape[2:], model.start_id, x.dtype)
    stream = np.concatenate([start, x[:, :-1]], axis=1)
    keras_state = model.init_state(batch, whole or None)
    init_feeds = whole or {contract.BATCH_TEMPLATE: np.zeros([batch], "int32")}
    half = length // 2
    _, mid_state = model.prefill(stream[:, :half], keras_state, whole or None)
    state_feeds = {contract.state_input_name(k): np.asarray(v) for k, v in mid_state.items()}
    per_step = _numpy(model.step_conditions(whole, mid_state)) if whole else {}
    x_prev = {contract.X_PREV: stream[:, half]}
    chunk = _numpy(model.chunk_conditions(whole, mid_state, length)) if whole else {}
    feeds = {
        contract.INIT_STATE: init_feeds,
        contract.PREFILL: {contract.X: stream, **_state_zero(model, batch, whole), **whole},
        contract.STEP: {**x_prev, **state_feeds, **per_step},
        contract.SAMPLE_STEP: {**x_prev, **state_feeds, **per_step, **controls,
                               contract.NOISE: _noise(model, [batch], rng)},
        contract.SAMPLE_CHUNK: {**x_prev, **state_feeds, **chunk, **controls,
                                contract.NOISE: _noise(model, [batch, length], rng),
                                **_chunk_prompt(x[:, half:], length)},
        contract.LOG_PROB: {contract.X: _scored_x(model, x, whole, controls, rng), **whole,
                            **_scored_lengths(model, batch, length)},
        contract.GENERATE: {contract.NOISE: _noise(model, [batch, length], rng), **controls,
                            **prompt_feeds(x), **whole},
    }
    return {name: feeds[name] for name in names if name in feeds}


def prompt_feeds(x):
    """`generate`'s prompt inputs from generated x [B, T, *event]: row i forced for its
    first (T // 2 - i) mod (T // 2 + 1) positions (row 0 half a sequence, row 1 one less...)."""
    batch, length = x.shape[:2]
    forced = (length // 2 - np.arange(batch)) % (length // 2 + 1)
    return {contract.PROMPT: np.asarray(x), contract.PROMPT_LENGTH: forced.astype("int32")}


def _chunk_prompt(x, length):
    """`sample_chunk`'s forced values: row i forced for its first (2 - i) mod 3 positions."""
    forced = (2 - np.arange(x.shape[0])) % 3
    return {contract.PROMPT: np.asarray(x[:, :min(2, length)]),
            contract.PROMPT_LENGTH: np.minimum(forced, min(2, length)).astype("int32")}


def chunk_parity(model, runners, sizes=(1, 7, 64), batch=2, seed=2, atol=1e-5,
                 stop_token=None):
    """Rows (target, "sample_chunk K", output, max diff, ok): one chunk of K from
    `init_state` on every target against Keras (K capped at the model's `capacity`; rows end
    at `stop_token`, the artifacts' own)."""
    keras_run = keras_runner(model, stop_token)
    rng = np.random.default_rng(seed)
    whole = example_conditions(model, batch, max(sizes), seed)
    state = model.init_state(batch, whole or None)
    start = np.full((batch,) + tuple(model.event_shape), model.start_id,
                    np.dtype(model.x_dtype.as_numpy_dtype))
    limit = capacity(model)
    rows = []
    for k in sorted({min(k, limit) if limit else k for k in sizes}):
        chunk = _numpy(model.chunk_conditions(whole, state, k)) if whole else {}
        feeds = {contract.X_PREV: start, **_state_zero(model, batch, whole), **chunk,
                 **_controls(batch), contract.NOISE: _noise(model, [batch, k], rng),
                 contract.PROMPT: np.zeros((batch, 0) + start.shape[1:], start.dtype),
                 contract.PROMPT_LENGTH: np.zeros(batch, "int32")}
        reference = keras_run(contract.SAMPLE_CHUNK, feeds)
        for target, run in runners.items():
            if contract.SAMPLE_CHUNK not in getattr(run, "signatures", [contract.SAMPLE_CHUNK]):
                continue
            got = run(contract.SAMPLE_CHUNK, feeds)
            rows += [(target, f"sample_chunk K={k}") + row
                     for row in compare(reference, got, atol, 1e-6)]
    return rows


def capacity(model):
    """Positions one generation can hold (an image's pixels, a fixed cache's `max_length`),
    or None when unbounded: the sample-parity run restarts generation after that many."""
    dims = model.x_spec().shape.as_list()[1:]
    bounds = []
    if None not in dims:
        bounds.append(int(np.prod(dims)) // max(1, int(np.prod(model.event_shape))))
    if getattr(model, "max_length", None):
        bounds.append(int(model.max_length))
    return min(bounds) if bounds else None


def _scored_x(model, x, whole, controls, rng):
    """Generated `x` [B, T, *event] in the layout `log_prob` takes (`model.x_spec()`): whole
    images are generated in full and reshaped to [B, H, W, C]."""
    dims = model.x_spec().shape.as_list()[1:]
    if None in dims:
        return x
    positions = capacity(model)
    if x.shape[1] != positions:
        x = np.asarray(model.generate_from_noise(
            _noise(model, [x.shape[0], positions], rng), conditions=whole or None,
            **controls)[contract.X])
    return x.reshape([x.shape[0]] + dims)


def _scored_lengths(model, batch, length):
    """`lengths` for `log_prob` where the model scores them: row 0 whole, the others
    shorter (so a target that ignores the padding mask differs)."""
    if not getattr(model, "scores_lengths", False):
        return {}
    return {contract.LENGTHS: np.maximum(length - 3 * np.arange(batch), 1).astype("int32")}


def _state_zero(model, batch, whole):
    state = model.init_state(batch, whole or None)
    return {contract.state_input_name(k): np.asarray(v) for k, v in state.items()}


# -------------------------------------------------------------------------------- runners
# --------------------------------------------------------------------------------- checks
def compare(reference, got, atol, rtol):
    """[(output, max_abs_diff, ok)] for every reference output."""
    rows = []
    for key, want in sorted(reference.items()):
        have = got.get(key)
        if have is None or np.shape(have) != np.shape(want):
            rows.append((key, float("inf"), False))
            continue
        want, have = np.asarray(want), np.asarray(have)
        if want.size == 0:
            rows.append((key, 0.0, True))
            continue
        diff = np.abs(want.astype(np.float64) - have.astype(np.float64))
        if np.issubdtype(want.dtype, np.floating):
            ok = bool(np.all(diff <= atol + rtol * np.abs(want)))
        else:
            ok = bool(np.all(diff == 0))
        rows.append((key, float(diff.max()), ok))
    return rows


def signature_parity(model, runners, names, batch=2, atol=1e-5, rtol=1e-6, seed=0,
                     stop_token=None):
    """Rows (target, signature, output, max diff, ok) for every signature and target."""
    keras_run = keras_runner(model, stop_token)
    feeds = example_feeds(model, names, batch=batch, seed=seed)
    rows = []
    for name, signature_feeds in feeds.items():
        reference = keras_run(name, signature_feeds)
        for target, run in runners.items():
            if name not in getattr(run, "signatures", names):
                continue
            got = run(name, signature_feeds)
            rows += [(target, name) + row for row in compare(reference, got, atol, rtol)]
    return rows


def sample_parity(model, runners, num_steps=64, batch=2, seed=1, atol=1e-5, rtol=1e-6,
                  stop_token=None):
    """Drive sample_step for `num_steps` on Keras and every target from the same noise.

    Returns rows (target, "sample_step x64", output, max diff, ok): x_next must be identical
    at every step (real-valued samples, e.g. the continuous-sequence model's: within
    `atol`; a head with `sample_level_tolerance` k, e.g. a logistic mixture over 65,536
    levels whose bins are narrower than the runtimes' float differences, within k levels),
    params within `atol + rtol |params| + 1e-5 max |params|` at every step (large logits
    carry float32 rounding above `atol` alone, and over many steps through the state a
    trained model's rounding grows with the scale of its outputs). Every target is fed
    Keras's sample as the next `x_prev` (teacher forcing), so a mismatch is counted where it
    happens instead of derailing the rest of the stream. Models with a bounded number of
    positions (`capacity`: an image's pixels) start a new generation every `capacity` steps.
    """
    rng = np.random.default_rng(seed)
    whole = example_conditions(model, batch, num_steps, seed)
    noise = _noise(model, [batch, num_steps], rng)
    controls = _controls(batch)
    keras_run = keras_runner(model, stop_token)
    init = whole or {contract.BATCH_TEMPLATE: np.zeros([batch], "int32")}
    start = np.full((batch,) + tuple(model.event_shape), model.start_id,
                    np.dtype(model.x_dtype.as_numpy_dtype))
    runs = {"keras": keras_run, **runners}
    limit = capacity(model)
    samples = {t: [] for t in runs}
    params_diff = {t: 0.0 for t in runners}
    params_ok = {t: True for t in runners}
    for step in range(num_steps):
        if step == 0 or (limit and step % limit == 0):  # a new image / sequence
            states = {t: _as_inputs(run(contract.INIT_STATE, init)) for t, run in runs.items()}
            x_prev = {t: start for t in runs}
        key_state = {contract.state_key_from_name(k): v for k, v in states["keras"].items()}
        per_step = _numpy(model.step_conditions(whole, key_state)) if whole else {}
        outputs = {}
        for target, run in runs.items():
            feeds = {contract.X_PREV: x_prev[target], contract.NOISE: noise[:, step],
                     **states[target], **controls, **per_step}
            outputs[target] = run(contract.SAMPLE_STEP, feeds)
            x_prev[target] = outputs["keras"][contract.X_NEXT]  # keras runs first
            states[target] = _as_inputs(outputs[target])
            samples[target].append(outputs[target][contract.X_NEXT])
        want = np.asarray(outputs["keras"][contract.PARAMS], np.float64)
        for target in runners:
            diff = np.abs(np.asarray(outputs[target][contract.PARAMS], np.float64) - want)
            params_diff[target] = max(params_diff[target], float(np.max(diff)))
            bound = atol + rtol * np.abs(want) + STEP_SCALE_RTOL * np.max(np.abs(want))
            params_ok[target] &= bool(np.all(diff <= bound))
    tolerance = int(getattr(getattr(model, "head", None), "sample_level_tolerance", 0))
    return _sample_rows(samples, params_diff, num_steps, atol, tolerance, params_ok)


def _sample_rows(samples, params_diff, num_steps, atol, tolerance=0, params_ok=None):
    """Rows (target, case, output, max diff, ok) comparing each target's sampled values
    and params with Keras's (`samples["keras"]`)."""
    reference = np.stack(samples["keras"], 1)
    rows = []
    for target in params_diff:
        got = np.stack(samples[target], 1)
        if np.issubdtype(reference.dtype, np.floating):  # real-valued samples: within atol
            diff = float(np.max(np.abs(got.astype(np.float64) - reference)))
            rows.append((target, f"sample_step x{num_steps}", contract.X_NEXT, diff,
                         diff <= atol))
        else:
            mismatches = int(np.sum(got != reference))
            worst = int(np.max(np.abs(got.astype(np.int64) - reference))) if mismatches else 0
            name = contract.X_NEXT + (f" (+-{tolerance} level)" if tolerance else "")
            rows.append((target, f"sample_step x{num_steps}", name, float(mismatches),
                         worst <= tolerance))
        rows.append((target, f"sample_step x{num_steps}", contract.PARAMS,
                     params_diff[target], params_diff[target] <= atol if params_ok is None
                     else params_ok[target]))
    return rows


def _as_inputs(outputs):
    return {contract.state_input_name(contract.state_key_from_name(k)): v
            for k, v in outputs.items() if k.startswith(contract.STATE_OUTPUT_PREFIX)}


def table(rows):
    lines = [f"{'target':10s} {'signature':18s} {'output':22s} {'max diff':>10s}  ok"]
    lines += [f"{t:10s} {s:18s} {o:22s} {d:10.3g}  {'yes' if ok else 'NO'}"
              for t, s, o, d, ok in rows]
    return "\n".join(lines)


def verify(model, directory, targets=None, num_steps=64, batch=2, atol=1e-5):
    """Run the gate on the artifacts under `directory`; raise ParityError with the table on
    any failure; return the rows."""
    directory = pathlib.Path(directory)
    runners = runners_for(directory, targets)
    manifests = {t: manifest_lib.read_manifest(directory / t) for t in runners}
    for target, run in runners.items():
        run.signatures = list(manifests[target]["signatures"])
    names = [n for n in contract.ENDPOINTS]
    # the Keras reference ends rows where the artifacts do: at the stop token they hold
    stop = {m["decoding"].get("stop_token") for m in manifests.values()}
    if len(stop) > 1:
        raise ParityError(f"The targets under {directory} were exported with different stop "
                          f"tokens {sorted(stop, key=str)}; export them together.", [])
    stop_token = stop.pop() if stop else None
    common = dict(batch=batch, atol=atol, stop_token=stop_token)
    rows = signature_parity(model, runners, names, **common)
    rows += sample_parity(model, runners, num_steps=num_steps, **common)
    rows += chunk_parity(model, runners, **common)
    if not all(row[-1] for row in rows):
        raise ParityError("Export parity gate failed (a target differs from Keras):\n"
                          + table([r for r in rows if not r[-1]]) + "\n\nfull table:\n"
                          + table(rows), rows)
    return rows
